"""Any ``nn.Module`` made ready for visualization: frozen, normalized inside, hooked by layer name.

Inputs are always RGB in [0, 1]; the network's own normalization lives here. Activations of
named layers are captured with forward hooks and the forward pass stops as soon as every layer
an objective reads has been seen, so no work is spent on layers nobody reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import FeaturevisError, unknown

#: Pseudo-layer names every model has: the [0, 1] input image and the network's output.
INPUT, LOGITS = "input", "logits"


class _Stop(Exception):
    """Raised from a hook to end the forward pass once every requested layer is captured."""


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    shape: tuple[int, ...]  # output shape without the batch dimension
    calls: int  # how often the module runs per forward (a reused module captures its first call)


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def class_label(labels: Sequence[str] | None, idx: int) -> str:
    """``labels[idx]``, or the index itself when there is no such label; results that keep only
    the label list (not the model) name classes the same way as :meth:`FeatureModel.class_name`."""
    return labels[idx] if labels and 0 <= idx < len(labels) else str(idx)


class FeatureModel(nn.Module):
    """A frozen network with its preprocessing, layer names and activation capture.

    Args:
        net: any module mapping a normalized ``B×3×H×W`` batch to logits (or anything).
        mean, std: per-channel normalization applied to [0, 1] inputs, or ``preprocess``.
        preprocess: a callable from [0, 1] images to the network's input (overrides mean/std).
        input_size: the side the network was trained at (default render size).
        labels: class names, index = logit position.
        default_layer: the layer recipes use when none is given (DeepDream's classic choice).
        channels_last: run the network in NHWC memory layout. oneDNN (CPU) and cuDNN convolutions
            are faster in it (lite0 forward+backward: 1.4-1.8x on this 2-core CPU); values are the
            same up to float rounding.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        input_size: int = 224,
        labels: Sequence[str] | None = None,
        name: str | None = None,
        channels_last: bool = True,
        default_layer: str | None = None,
    ):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        # In-place activations (torchvision's ReLU(inplace=True)) would overwrite the output a
        # hook captured from the layer before them: a conv's activation would read as ReLU'd.
        for m in self.net.modules():
            if isinstance(getattr(m, "inplace", None), bool):
                m.inplace = False
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.preprocess = preprocess
        self.input_size = input_size
        self.labels = list(labels) if labels is not None else None
        self.name = name or type(net).__name__
        self.default_layer = default_layer
        self._modules_by_name = {n: m for n, m in net.named_modules() if n}
        self._layer_cache: dict[tuple[int, int], list[LayerInfo]] = {}
        self._output_shape: dict[tuple[int, int], tuple[int, ...]] = {}

    # -- preprocessing ---------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x) if self.preprocess is not None else (x - self.mean) / self.std
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train(self, mode: bool = True) -> FeatureModel:
        # Visualization always runs the network in eval mode (BN statistics, no dropout).
        super().train(False)
        return self

    @property
    def device(self) -> torch.device:
        return self.mean.device

    # -- layers ----------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        return list(self._modules_by_name)

    def check_layer(self, layer: str) -> str:
        if layer in (INPUT, LOGITS) or layer in self._modules_by_name:
            return layer
        raise unknown("layer", layer, [*self._modules_by_name, LOGITS])

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        """Every named module in execution order with its output shape at ``size`` px."""
        size = size or self.input_size
        key = (size, size)
        if key not in self._layer_cache:
            order: dict[str, LayerInfo] = {}
            hooks = []

            def make_hook(name: str):
                def hook(mod: nn.Module, args: object, out: object) -> None:
                    t = _first_tensor(out)
                    if name in order:
                        info = order[name]
                        order[name] = LayerInfo(info.name, info.kind, info.shape, info.calls + 1)
                    else:
                        shape = tuple(t.shape[1:]) if t is not None else ()
                        order[name] = LayerInfo(name, type(mod).__name__, shape, 1)

                return hook

            if size != self.input_size:  # the probe at the model's own size is what measures it
                from .memory import check_request

                check_request(self, 1, size, size, grad=False, copies=1, what=f"{self.name} at {size} px")
            for name, mod in self._modules_by_name.items():
                hooks.append(mod.register_forward_hook(make_hook(name)))
            try:
                with torch.no_grad():
                    out = _first_tensor(self._run(torch.zeros(1, 3, size, size, device=self.device)))
                self._output_shape[key] = tuple(out.shape[1:]) if out is not None else ()
            except (FeaturevisError, MemoryError):
                raise
            except Exception as e:  # the first images it is shown: say it is the model, not featurevis
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise FeaturevisError(
                    f"model {self.name} does not accept a (1, 3, {size}, {size}) image batch: {first}"
                ) from None
            finally:
                for h in hooks:
                    h.remove()
            self._layer_cache[key] = list(order.values())
        return self._layer_cache[key]

    def layer_shape(self, layer: str, size: int | None = None) -> tuple[int, ...]:
        """Output shape (no batch dim) of ``layer`` at ``size`` px; clear error if unknown."""
        self.check_layer(layer)
        size = size or self.input_size
        if layer == INPUT:
            return (3, size, size)
        infos = self.layers(size)  # one probe pass per size, cached, also records the output shape
        if layer == LOGITS:
            return self._output_shape[(size, size)]
        for info in infos:
            if info.name == layer:
                return info.shape
        raise FeaturevisError(f"layer {layer!r} does not run in the forward pass")

    # -- capture ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, layers: Iterable[str] = (LOGITS,)) -> dict[str, torch.Tensor]:
        """Run ``x`` (RGB in [0, 1]) and return the activations of ``layers`` by name.

        The pass stops right after the last requested layer has produced its output, unless
        ``"logits"`` is requested.
        """
        wanted = {self.check_layer(name) for name in layers}
        acts: dict[str, torch.Tensor] = {}
        if INPUT in wanted:
            acts[INPUT] = x
        hooked = wanted - {INPUT, LOGITS}
        need_logits = LOGITS in wanted
        if not hooked and not need_logits:
            return acts
        hooks = []

        def make_hook(name: str):
            def hook(mod: nn.Module, args: object, out: object) -> None:
                if name in acts:
                    return
                acts[name] = _first_tensor(out)
                if not need_logits and hooked.issubset(acts):
                    raise _Stop

            return hook

        for name in hooked:
            hooks.append(self._modules_by_name[name].register_forward_hook(make_hook(name)))
        try:
            out = self._run(x)
            if need_logits:
                acts[LOGITS] = _first_tensor(out)
        except _Stop:
            pass
        finally:
            for h in hooks:
                h.remove()
        missing = wanted - set(acts)
        if missing:
            raise FeaturevisError(f"layer(s) {sorted(missing)} did not run in the forward pass")
        return acts

    def _run(self, x: torch.Tensor) -> object:
        """The network on [0, 1] images; an input too small for its pooling is a user error."""
        try:
            return self.net(self.normalize(x))
        except RuntimeError as e:
            if "too small" not in str(e):
                raise
            h, w = x.shape[-2:]
            raise FeaturevisError(f"a {w}x{h} image is too small for {self.name}; use a larger size") from None

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities for a batch of [0, 1] images."""
        with torch.no_grad():
            return self(x, [LOGITS])[LOGITS].softmax(-1)

    def class_name(self, idx: int) -> str:
        """The label of class ``idx``, or the index itself for a model without (that) label."""
        return class_label(self.labels, idx)

    def class_index(self, cls: int | str) -> int:
        """A class given by index or (case-insensitive) name, validated."""
        n = len(self.labels) if self.labels else None
        if isinstance(cls, str) and not cls.lstrip("-").isdigit():
            if not self.labels:
                raise FeaturevisError(f"model {self.name} has no class names; give an index")
            lower = [label.lower() for label in self.labels]
            if cls.lower() in lower:
                return lower.index(cls.lower())
            raise unknown("class", cls, self.labels)
        idx = int(cls)
        if n is not None and not 0 <= idx < n:
            raise FeaturevisError(f"class {idx} out of range: {self.name} has classes 0..{n - 1}")
        return idx
