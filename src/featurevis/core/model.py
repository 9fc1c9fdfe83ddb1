"""Any ``nn.Module`` made ready for visualization: frozen, normalized inside, hooked by layer name.

Inputs are images in [0, 1] with the model's number of channels (RGB by default; 1 for a
grayscale network, 4 for RGB + depth...); the network's own normalization lives here. Activations of
named layers are captured with forward hooks and the forward pass stops as soon as every layer
an objective reads has been seen, so no work is spent on layers nobody reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import layouts as L
from .errors import FeaturevisError, unknown
from .layouts import Layout

#: Pseudo-layer names every model has: the [0, 1] input image and the network's output.
INPUT, LOGITS = "input", "logits"
#: ``LAYER#prefix``: a token layer's prefix tokens (class, distillation, registers) as ``(B, P, D)``;
#: ``LAYER#input``: what the module receives rather than what it returns (an attention
#: projection's input holds the heads side by side).
PREFIX, INPUT_OF = "#prefix", "#input"


def split_view(name: str) -> tuple[str, str]:
    """``"blocks.6#prefix"`` -> ``("blocks.6", "#prefix")``; a plain name has the view ``""``."""
    base, sep, view = name.partition("#")
    return base, sep + view


def capture_of(name: str) -> str:
    """What a hook records for ``name``: the module's output (for ``LAYER`` and ``LAYER#prefix``,
    which share it) or its input (``LAYER#input``)."""
    base, view = split_view(name)
    return base + (INPUT_OF if view == INPUT_OF else "")


class _Stop(Exception):
    """Raised from a hook to end the forward pass once every requested layer is captured."""


@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    shape: tuple[int, ...]  # what objectives read, without the batch dimension: (C, H, W) for maps and tokens
    calls: int  # how often the module runs per forward (a reused module captures its first call)
    layout: Layout | None = None  # None: the axes could not be told apart (objectives refuse the layer)
    raw: tuple[int, ...] = ()  # the module's own output shape, without the batch dimension

    @property
    def spatial(self) -> bool:
        """A map of channels over positions (CNN maps and transformer patch grids alike)."""
        return self.layout is not None and self.layout.readable and len(self.shape) == 3

    def describe(self) -> str:
        if self.layout is None:
            return "? (layout unknown: see layouts=)"
        return self.layout.describe(self.shape)


def _first_tensor(out: object) -> torch.Tensor | None:
    """The tensor a module's output stands for: itself, the first of a tuple, a Hugging Face
    output's ``logits`` / ``last_hidden_state`` or its first tensor."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        for key in ("logits", "last_hidden_state", "image_embeds"):
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def class_label(labels: Sequence[str] | None, idx: int) -> str:
    """``labels[idx]``, or the index itself when there is no such label; results that keep only
    the label list (not the model) name classes the same way as :meth:`FeatureModel.class_name`."""
    return labels[idx] if labels and 0 <= idx < len(labels) else str(idx)


#: ImageNet's per-channel statistics (RGB) and their grey equivalent (the mean over RGB).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GREY_MEAN, GREY_STD = (0.449,), (0.226,)


def input_channels(channels: int | None, mean: Sequence[float] | None, std: Sequence[float] | None) -> int:
    """The channel count a model reads: ``channels`` if given, else the length of ``mean`` /
    ``std``, else 3; any two that disagree are one error (a grayscale net given RGB statistics
    would otherwise normalize with the wrong numbers or fail deep in the first convolution)."""
    said = {}
    if channels is not None:
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise FeaturevisError(f"channels must be a positive whole number, not {channels!r}")
        said["channels"] = channels
    for name, values in (("mean", mean), ("std", std)):
        if values is not None:
            said[name] = len(values)
    if len(set(said.values())) > 1:
        told = ", ".join(f"{k} {'=' if k == 'channels' else 'has'} {v}" for k, v in said.items())
        raise FeaturevisError(f"the input channels disagree: {told}; give one per channel the network reads")
    return next(iter(said.values()), 3)


def default_normalization(
    channels: int, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Sequence[float], Sequence[float]]:
    """``mean``/``std`` where given, else ImageNet's (grey for one channel; channels after the
    third pass through: mean 0, std 1)."""
    if channels == 1:
        base_mean, base_std = GREY_MEAN, GREY_STD
    else:
        extra = max(0, channels - 3)
        base_mean = (IMAGENET_MEAN + (0.0,) * extra)[:channels]
        base_std = (IMAGENET_STD + (1.0,) * extra)[:channels]
    return (base_mean if mean is None else mean), (base_std if std is None else std)


class FeatureModel(nn.Module):
    """A frozen network with its preprocessing, layer names and activation capture.

    Args:
        net: any module mapping a normalized ``B×C×H×W`` batch to logits (or anything).
        channels: ``C``, the input channels the network reads (default: the length of
            ``mean``/``std`` when given, else 3). Parameterizations, transforms, probes, photos
            and saved files follow it: 1 is drawn and saved as grayscale, 4 or more as RGB
            plus one grey tile per further channel.
        mean, std: per-channel normalization applied to [0, 1] inputs, or ``preprocess``
            (default: ImageNet's; for 1 channel ImageNet's grey, 0.449 / 0.226; channels after
            the third are passed through as they are, mean 0 and std 1).
        preprocess: a callable from [0, 1] images to the network's input (overrides mean/std).
        input_size: the side the network was trained at (default render size).
        labels: class names, index = logit position.
        default_layer: the layer recipes use when none is given (DeepDream's classic choice).
        text_encoder: texts -> L2-normalized text embeddings ``(n, E)`` on the model's device, for a
            network whose output is an embedding in the same space (CLIP's image tower;
            ``text:"..."`` targets).
        channels_last: run the network in NHWC memory layout. oneDNN (CPU) and cuDNN convolutions
            are faster in it (lite0 forward+backward: 1.4-1.8x on this 2-core CPU); values are the
            same up to float rounding.
        layouts: what the axes of some layers mean, by name or glob: a :class:`~.layouts.Layout`
            or a code (``"BCHW"``, ``"BHWC"``, ``"BND"``, ``"NBD"``, ``"BHNN"``). Needed only
            where :func:`~.layouts.infer` cannot tell from the model and its shapes.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        input_size: int = 224,
        labels: Sequence[str] | None = None,
        name: str | None = None,
        channels_last: bool = True,
        default_layer: str | None = None,
        layouts: Mapping[str, Layout | str] | None = None,
        text_encoder: Callable[[Sequence[str]], torch.Tensor] | None = None,
        channels: int | None = None,
    ):
        super().__init__()
        self.channels = input_channels(channels, mean, std)
        mean, std = default_normalization(self.channels, mean, std)
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
        self.text_encoder = text_encoder  # an nn.Module one moves with the model (.to(device))
        self.tokens = L.token_info(net)
        self._fixed = L.fixed_input_size(net, self.tokens)
        self.layout_overrides = dict(layouts or {})
        for spec in self.layout_overrides.values():
            L.as_layout(spec, self.tokens)  # a bad override fails here, not at the first render
        self._modules_by_name = {n: m for n, m in net.named_modules() if n}
        self._layer_cache: dict[tuple[int, int], list[LayerInfo]] = {}
        self._output_shape: dict[tuple[int, int], tuple[int, ...]] = {}
        self._raw: dict[tuple[int, int], dict[str, tuple[int, ...]]] = {}  # capture -> probe shape
        self._layouts: dict[str, Layout | None] = {}

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
        base, view = split_view(layer)
        if view not in ("", PREFIX, INPUT_OF):
            raise FeaturevisError(f"unknown view {view!r} of layer {base!r}: use {PREFIX} or {INPUT_OF}")
        if layer in (INPUT, LOGITS) or base in self._modules_by_name:
            return layer
        raise unknown("layer", base, [*self._modules_by_name, LOGITS])

    def layout(self, layer: str) -> Layout:
        """The layout of a layer (or ``LAYER#input``), inferred once; one clear error if unknown."""
        self.check_layer(layer)
        base, view = split_view(layer)
        capture = capture_of(layer)
        if capture not in self._layouts:
            self.layers(self.input_size)
            if capture not in self._layouts:
                raise FeaturevisError(f"layer {capture!r} does not run in the forward pass")
        found = self._layouts[capture]
        if found is None:  # its shape as the probe that could not read it saw it (any size)
            raise L.unreadable(capture, next(raw[capture] for raw in self._raw.values() if capture in raw))
        if view == PREFIX and not (found.tokens and found.prefix):
            raise FeaturevisError(f"layer {base!r} has no class or other prefix token ({found.describe(())})")
        return found

    def layers(self, size: int | None = None) -> list[LayerInfo]:
        """Every named module in execution order with its shape objectives read at ``size`` px."""
        size = size or self.input_size
        key = (size, size)
        if key not in self._layer_cache:
            if size != self.input_size:  # the probe at the model's own size is what measures it
                from .memory import check_request

                check_request(self, 1, size, size, grad=False, copies=1, what=f"{self.name} at {size} px")
            kinds, calls = self._probe(size)
            self._resolve_layouts(key)
            raw, net_size = self._raw[key], self._net_size(key)
            self._layer_cache[key] = [
                LayerInfo(
                    name,
                    kind,
                    self._canonical_shape(name, raw[name], self._layouts[name], net_size),
                    calls[name],
                    self._layouts[name],
                    tuple(raw[name][1:]),
                )
                for name, kind in kinds.items()
            ]
        return self._layer_cache[key]

    def _probe(self, size: int) -> tuple[dict[str, str], dict[str, int]]:
        """One pass of a blank batch at ``size`` px recording every module's input and output
        shape (``self._raw``), type and number of calls, and the network's output shape."""
        kinds: dict[str, str] = {}
        raw: dict[str, tuple[int, ...]] = {}
        calls: dict[str, int] = {}
        hooks = []

        def make_hook(name: str):
            def hook(mod: nn.Module, args: object, out: object) -> None:
                calls[name] = calls.get(name, 0) + 1
                if name in kinds:
                    return
                kinds[name] = type(mod).__name__
                t, i = _first_tensor(out), _first_tensor(args)
                raw[name] = tuple(t.shape) if t is not None else ()
                if i is not None:
                    raw[name + INPUT_OF] = tuple(i.shape)

            return hook

        for name, mod in self._modules_by_name.items():
            hooks.append(mod.register_forward_hook(make_hook(name)))
        try:
            with torch.no_grad():
                blank = torch.zeros(L.PROBE_BATCH, self.channels, size, size, device=self.device)
                out = _first_tensor(self._run(blank))
        except (FeaturevisError, MemoryError):
            raise
        except Exception as e:  # the first images it is shown: say it is the model, not featurevis
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise FeaturevisError(
                f"model {self.name} does not accept image batches (N, {self.channels}, {size}, {size}): {first}"
                + ("" if self.channels != 3 else "; a network that reads other than RGB needs channels=C")
            ) from None
        finally:
            for h in hooks:
                h.remove()
        self._output_shape[(size, size)] = tuple(out.shape[1:]) if out is not None else ()
        self._raw[(size, size)] = raw
        return kinds, calls

    def _resolve_layouts(self, key: tuple[int, int]) -> None:
        """Give every capture seen at ``key`` a layout: the user's, else inferred; a map whose
        axes are all the same length is settled by a second probe at twice the size, where only
        the spatial axes grow."""
        raw = self._raw[key]
        todo = [c for c in raw if c not in self._layouts]
        for c in todo:
            self._layouts[c] = L.override(c, self.layout_overrides, self.tokens) or L.infer(
                raw[c], self.tokens, self._net_size(key)
            )
        unsure = [c for c in todo if self._layouts[c] is None and len(raw[c]) == 4]
        if unsure and self.fixed_size is None:
            bigger = 2 * key[0]
            self._probe(bigger)
            for c in unsure:
                self._layouts[c] = L.from_two_sizes(raw[c], self._raw[(bigger, bigger)].get(c, ()))

    def _canonical_shape(
        self, capture: str, raw: tuple[int, ...], layout: Layout | None, size: tuple[int, int]
    ) -> tuple[int, ...]:
        """The per-image shape objectives read, worked out on a meta tensor (no memory, no work)."""
        if layout is None or not raw:
            return tuple(raw[1:])
        grid, _ = L.canonical(torch.empty(raw, device="meta"), layout, capture, size)
        return tuple(grid.shape[1:])

    def layer_shape(self, layer: str, size: int | None = None) -> tuple[int, ...]:
        """The shape objectives read (no batch dim) of ``layer`` at ``size`` px: ``(C, H, W)`` for
        maps and patch grids, ``(D, P)`` for ``LAYER#prefix``; a clear error if unknown."""
        self.check_layer(layer)
        size = size or self.input_size
        if layer == INPUT:
            return (self.channels, size, size)
        self.layers(size)  # one probe pass per size, cached, also records the output shape
        if layer == LOGITS:
            return self._output_shape[(size, size)]
        capture = capture_of(layer)
        raw = self._raw[(size, size)].get(capture)
        if raw is None:
            raise FeaturevisError(f"layer {capture!r} does not run in the forward pass")
        layout = self.layout(layer)
        if split_view(layer)[1] == PREFIX:
            return (raw[-1], layout.prefix)
        return self._canonical_shape(capture, raw, layout, self._net_size((size, size)))

    def attention_heads(self, layer: str) -> tuple[str, int, tuple[torch.Tensor, torch.Tensor] | None]:
        """Where the per-head outputs of attention module ``layer`` can be read: (capture name,
        number of heads, unmixing matrix and bias or ``None``).

        timm's ``Attention`` feeds the heads side by side to its ``proj`` layer (Hugging Face's to
        ``out_proj``, ``o_proj`` or ``output.dense``), so they are that layer's input.
        ``nn.MultiheadAttention`` (open_clip) applies its output projection inside one fused
        call; its heads are recovered by inverting that (square) projection.
        """
        base = self.check_layer(layer)
        mod = self._modules_by_name.get(base)
        if isinstance(mod, nn.MultiheadAttention):
            w, b = mod.out_proj.weight.detach(), mod.out_proj.bias
            b = b.detach() if b is not None else torch.zeros(w.shape[0], device=w.device)
            try:
                m = torch.linalg.inv(w.double()).float()
            except RuntimeError:
                raise FeaturevisError(
                    f"the output projection of {base!r} is singular; its heads cannot be separated"
                ) from None
            return base, mod.num_heads, (m, b)
        # (heads attribute, output projection) in timm's Attention, Hugging Face's attention
        # modules (CLIP; ViT/DeiT in transformers 5) and its older ViT/DeiT attention wrapper
        wrapped = getattr(mod, "attention", None)
        for heads_of, proj_path in ((mod, "proj"), (mod, "out_proj"), (mod, "o_proj"), (wrapped, "output.dense")):
            heads = getattr(heads_of, "num_heads", None) or getattr(heads_of, "num_attention_heads", None)
            proj = self._modules_by_name.get(f"{base}.{proj_path}")
            if mod is not None and isinstance(heads, int) and isinstance(proj, nn.Linear):
                return f"{base}.{proj_path}{INPUT_OF}", heads, None
        raise FeaturevisError(
            f"layer {base!r} ({type(mod).__name__ if mod is not None else base}) is not an attention module "
            "with heads; head=H works on e.g. blocks.6.attn (timm) or transformer.resblocks.6.attn (open_clip)"
        )

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
        # capture -> the names it fills: "X" and "X#prefix" share the output of X
        captures: dict[str, list[str]] = {}
        for name in hooked:
            captures.setdefault(capture_of(name), []).append(name)
        layouts = {c: self.layout(c) for c in captures}
        size = self._net_size(x.shape[-2:])
        hooks = []

        def store(capture: str, t: torch.Tensor | None) -> None:
            if capture in acts or t is None:
                return
            grid, prefix = L.canonical(t, layouts[capture], capture, size)
            for name in captures[capture]:
                acts[name] = prefix if split_view(name)[1] == PREFIX else grid
            acts[capture] = grid
            if not need_logits and hooked.issubset(acts):
                raise _Stop

        def make_hook(capture: str):
            if capture.endswith(INPUT_OF):

                def pre_hook(mod: nn.Module, args: object) -> None:
                    store(capture, _first_tensor(args))

                return pre_hook

            def hook(mod: nn.Module, args: object, out: object) -> None:
                store(capture, _first_tensor(out))

            return hook

        for capture in captures:
            base = split_view(capture)[0]
            mod = self._modules_by_name[base]
            if capture.endswith(INPUT_OF):
                hooks.append(mod.register_forward_pre_hook(make_hook(capture)))
            else:
                hooks.append(mod.register_forward_hook(make_hook(capture)))
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
        return {name: acts[name] for name in wanted}

    @property
    def patch_px(self) -> int | None:
        """The side of a transformer's patches (its token grid's cell), else None."""
        return max(self.tokens.patch) if self.tokens is not None else None

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """The one input size the network accepts (a ViT with a fixed position embedding), else None."""
        return self._fixed

    def _net_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        return self.fixed_size or tuple(hw)

    def _run(self, x: torch.Tensor) -> object:
        """The network on [0, 1] images; an input too small for its pooling is a user error.

        A fixed-size network sees the image resized to its size, so transforms that rescale and
        photos of any size still work (the patch grid is then always the same)."""
        if x.dim() == 4 and x.shape[1] != self.channels:
            raise FeaturevisError(f"{self.name} reads {self.channels}-channel images, not {x.shape[1]}-channel ones")
        fixed = self.fixed_size
        if fixed is not None and tuple(x.shape[-2:]) != fixed:
            shrink = x.shape[-2] > fixed[0] or x.shape[-1] > fixed[1]
            x = F.interpolate(x, size=fixed, mode="bilinear", align_corners=False, antialias=shrink)
        try:
            return self.net(self.normalize(x))
        except RuntimeError as e:
            if "too small" not in str(e):
                raise
            h, w = x.shape[-2:]
            raise FeaturevisError(f"a {w}x{h} image is too small for {self.name}; use a larger size") from None

    def require_rgb(self, technique: str) -> None:
        """Refuse, in one line, a technique that can only draw RGB images on a model that reads
        another number of channels (a grayscale or RGB + depth network)."""
        if self.channels != 3:
            raise FeaturevisError(f"{technique} draws RGB images; {self.name} reads {self.channels} channel(s)")

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
