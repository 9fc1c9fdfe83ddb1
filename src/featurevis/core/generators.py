"""Image generators for learned priors: code → image networks, their files and code ranges.

A :class:`Generator` wraps any network that maps a code to an image (the published DeePSiM
fc6 network, one trained by ``featurevis prior-train``, or any callable such as a BigGAN the
user has) together with the range each code unit may take. DGN-AM (:mod:`featurevis.dgn`)
optimizes the code instead of pixels, so every image it can produce is one the generator
learned to draw.

The DeePSiM fc6 network (Dosovitskiy & Brox 2016) inverts CaffeNet's fc6 layer: a 4096-d
code → three fully connected layers → 256×4×4 → five stride-2 up-convolutions (with three
3×3 ones between them), LeakyReLU(0.3) → a 256×256 BGR image around ImageNet's mean pixel.
Its PyTorch conversion (``upconvGAN_fc6.pt``, ~224 MB) loads strictly into
:func:`deepsim_fc6`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .errors import FeaturevisError
from .images import atomic_write
from .model import FeatureModel

FORMAT = "featurevis-generator"
#: The fc6 checkpoint's file name in the torch hub cache (``$TORCH_HOME/hub/checkpoints``).
FC6_FILE = "upconvGAN_fc6.pt"
#: CaffeNet's mean pixel in RGB order, 0-255: the fc6 generator draws around it.
CAFFE_MEAN_RGB = (123.0, 117.0, 104.0)
#: The fc6 generator draws 256 px; CaffeNet saw the central 227 px (offset 14).
FC6_CROP, FC6_OFFSET = 227, 14


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.3)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)


def _same(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 3, stride=1, padding=1)


def deepsim_fc6(code_dim: int = 4096, fc: int = 4096, widths: Sequence[int] = (256, 512, 256, 256, 128, 128, 64, 32)):
    """The DeePSiM fc6 generator; the defaults are the published sizes (state-dict compatible).

    Smaller ``fc``/``widths`` give the same architecture at toy size for fast tests.
    Output: ``B×3×256×256`` BGR, mean-subtracted, in 0-255 units.
    """
    c5, c51, c4, c41, c3, c31, c2, c1 = widths
    if fc != c5 * 16:
        raise ValueError(f"fc ({fc}) must equal 16 x the first width ({c5})")
    layers: list[tuple[str, nn.Module]] = [
        ("defc7", nn.Linear(code_dim, fc)),
        ("relu_defc7", _lrelu()),
        ("defc6", nn.Linear(fc, fc)),
        ("relu_defc6", _lrelu()),
        ("defc5", nn.Linear(fc, fc)),
        ("relu_defc5", _lrelu()),
        ("reshape", nn.Unflatten(1, (c5, 4, 4))),
        ("deconv5", _up(c5, c5)),
        ("relu_deconv5", _lrelu()),
        ("conv5_1", _same(c5, c51)),
        ("relu_conv5_1", _lrelu()),
        ("deconv4", _up(c51, c4)),
        ("relu_deconv4", _lrelu()),
        ("conv4_1", _same(c4, c41)),
        ("relu_conv4_1", _lrelu()),
        ("deconv3", _up(c41, c3)),
        ("relu_deconv3", _lrelu()),
        ("conv3_1", _same(c3, c31)),
        ("relu_conv3_1", _lrelu()),
        ("deconv2", _up(c31, c2)),
        ("relu_deconv2", _lrelu()),
        ("deconv1", _up(c2, c1)),
        ("relu_deconv1", _lrelu()),
        ("deconv0", _up(c1, 3)),
    ]
    return nn.Sequential(OrderedDict(layers))


def caffe_bgr_to_unit(out: torch.Tensor, crop: int | None = FC6_CROP) -> torch.Tensor:
    """fc6 output (BGR, mean-subtracted, 0-255) → RGB in [0, 1], centre-cropped like CaffeNet's
    input (``crop=None`` keeps all 256 px)."""
    rgb = out.flip(1) + torch.tensor(CAFFE_MEAN_RGB, device=out.device, dtype=out.dtype).view(1, 3, 1, 1)
    img = (rgb / 255).clamp(0, 1)
    if crop is not None:
        off = (out.shape[-1] - crop + 1) // 2 if out.shape[-1] != 256 else FC6_OFFSET
        img = img[..., off : off + crop, off : off + crop]
    return img


class UpconvGenerator(nn.Module):
    """A trainable up-convolutional generator for any code shape (what ``prior-train`` fits).

    A vector code goes through two fully connected layers to ``width×s×s``; a spatial code
    (``C×h×w``) through a 3×3 convolution. Then stride-2 up-convolutions with LeakyReLU(0.3)
    (each followed by a 3×3 one, as in DeePSiM) double the side until it reaches ``size``;
    the image is centre-cropped to ``size`` and squashed to [0, 1] by a sigmoid.
    """

    def __init__(self, code_shape: Sequence[int], size: int = 224, width: int = 128):
        super().__init__()
        self.code_shape, self.size, self.width = tuple(int(c) for c in code_shape), int(size), int(width)
        vector = len(self.code_shape) == 1 or all(s == 1 for s in self.code_shape[1:])
        side = 1 if vector else min(self.code_shape[1:])
        ups = 0
        start = 7 if vector else side
        while start * 2**ups < size:
            ups += 1
        self.vector, self.start = vector, start
        code_dim = int(torch.tensor(self.code_shape).prod())
        if vector:
            self.stem = nn.Sequential(
                nn.Flatten(),
                nn.Linear(code_dim, 4 * width),
                _lrelu(),
                nn.Linear(4 * width, width * start * start),
                _lrelu(),
                nn.Unflatten(1, (width, start, start)),
            )
        else:
            self.stem = nn.Sequential(nn.Conv2d(self.code_shape[0], width, 3, padding=1), _lrelu())
        blocks: list[nn.Module] = []
        c = width
        for i in range(ups):
            cout = max(16, width >> (i // 2 + (i == ups - 1)))
            blocks += [_up(c, cout), _lrelu(), nn.Conv2d(cout, cout, 3, padding=1), _lrelu()]
            c = cout
        blocks.append(nn.Conv2d(c, 3, 3, padding=1))
        self.body = nn.Sequential(*blocks)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        x = self.body(self.stem(code.reshape(len(code), *self.code_shape)))
        off_y, off_x = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        return torch.sigmoid(x[..., off_y : off_y + self.size, off_x : off_x + self.size])


class Generator(nn.Module):
    """Code → RGB image in [0, 1], with the range ``[low, high]`` each code unit may take.

    Args:
        net: any module or callable from a ``B×code_shape`` tensor to images.
        code_shape: the code's shape without the batch dimension.
        low, high: per-unit bounds (scalars or tensors of ``code_shape``); ``±inf`` = none.
        to_image: maps the net's output to RGB in [0, 1] (default: the output as it is).
        encoder: ``(model name, layer)`` whose activations are this generator's codes, if known
            (lets DGN-AM start from a real image's code).
        freeze: put a module ``net`` in eval mode without gradients (off while training it).
    """

    def __init__(
        self,
        net: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        code_shape: Sequence[int],
        *,
        low: float | torch.Tensor = float("-inf"),
        high: float | torch.Tensor = float("inf"),
        to_image: Callable[[torch.Tensor], torch.Tensor] | None = None,
        encoder: tuple[str, str] | None = None,
        meta: dict | None = None,
        freeze: bool = True,
    ):
        super().__init__()
        self.net = net
        if freeze and isinstance(net, nn.Module):
            net.eval().requires_grad_(False)
        self.code_shape = tuple(int(c) for c in code_shape)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32).expand(self.code_shape).clone())
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32).expand(self.code_shape).clone())
        if bool((self.low > self.high).any()):
            raise FeaturevisError("code bounds: some lower bound is above its upper bound")
        self.to_image = to_image
        self.encoder = encoder
        self.meta = dict(meta or {})

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        out = self.net(code)
        return self.to_image(out) if self.to_image is not None else out

    def set_bounds(self, low: float | torch.Tensor | None = None, high: float | torch.Tensor | None = None) -> None:
        if low is not None:
            self.low = torch.as_tensor(low, dtype=torch.float32).expand(self.code_shape).clone().to(self.low)
        if high is not None:
            self.high = torch.as_tensor(high, dtype=torch.float32).expand(self.code_shape).clone().to(self.high)

    @property
    def code_range(self) -> torch.Tensor:
        """A typical span of a code unit (mean of finite ``high - low``, else 1)."""
        span = self.high - self.low
        finite = span[torch.isfinite(span)]
        return finite.mean() if len(finite) else torch.tensor(1.0)


# -- codes and bounds -------------------------------------------------------------------------
def encode(model: FeatureModel, layer: str, images: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """``layer``'s activations for ``images`` (at their own size), as codes."""
    model.check_layer(layer)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = images[i : i + batch].to(model.device)
            out.append(model(x, [layer])[layer].float().cpu())
    return torch.cat(out)


def activation_bounds(
    model: FeatureModel, layer: str, images: torch.Tensor, n_std: float = 3.0, batch: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit clip bounds ``(low, high)`` for codes of ``layer`` from its activations on
    ``images``. A non-negative layer (after a ReLU, like fc6) gets DGN-AM's ``[0, a]`` with
    ``a`` = ``n_std`` standard deviations of the unit; a signed one ``mean ± n_std·std``."""
    if len(images) < 2:
        raise FeaturevisError("clip bounds need at least 2 images")
    acts = encode(model, layer, images, batch)
    std = acts.std(0)
    if bool((acts >= 0).all()):
        return torch.zeros_like(std), n_std * std
    mean = acts.mean(0)
    return mean - n_std * std, mean + n_std * std


def load_bounds(path: str | os.PathLike, code_shape: Sequence[int]) -> torch.Tensor:
    """Upper bounds from a text file (one number per unit, whitespace separated) or a ``.pt``
    tensor, checked against the code's shape."""
    p = Path(path)
    if not p.is_file():
        raise FeaturevisError(f"{p}: no such bounds file")
    try:
        if p.suffix in (".pt", ".pth"):
            t = torch.load(p, map_location="cpu", weights_only=True)
        else:
            t = torch.tensor([float(v) for v in p.read_text().split()])
    except Exception as e:
        raise FeaturevisError(f"{p}: not a bounds file ({type(e).__name__})") from None
    n = int(torch.tensor(code_shape).prod())
    if not isinstance(t, torch.Tensor) or t.numel() != n:
        raise FeaturevisError(f"{p}: bounds have {getattr(t, 'numel', lambda: '?')()} values; the code has {n}")
    return t.float().reshape(tuple(code_shape))


# -- files ------------------------------------------------------------------------------------
def save_generator(gen: Generator, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write an :class:`UpconvGenerator`-based generator atomically (``load_generator`` reads it);
    ``extra`` entries (e.g. training state) go into the same file."""
    if not isinstance(gen.net, UpconvGenerator):
        raise FeaturevisError("only generators trained by featurevis (UpconvGenerator) can be saved")
    p = Path(path)
    payload = {
        "format": FORMAT,
        "version": 1,
        "config": {"code_shape": list(gen.code_shape), "size": gen.net.size, "width": gen.net.width},
        "state_dict": {k: v.detach().cpu() for k, v in gen.net.state_dict().items()},
        "low": gen.low.cpu(),
        "high": gen.high.cpu(),
        "encoder": list(gen.encoder) if gen.encoder else None,
        "meta": gen.meta,
        **(extra or {}),
    }
    with atomic_write(p) as tmp:
        torch.save(payload, tmp)
    return p


def default_fc6_path() -> Path:
    """Where the fc6 checkpoint is looked for when no path is given: the torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FC6_FILE


def load_generator(path: str | os.PathLike | None = None, bounds: str | os.PathLike | None = None) -> Generator:
    """A generator from a file: one written by ``prior-train``, or the DeePSiM fc6 state dict
    (``upconvGAN_fc6.pt``; default: the torch hub cache). ``bounds`` gives per-unit upper code
    bounds (file); fc6 codes are clipped at 0 below and, without bounds, not above."""
    p = Path(path) if path is not None else default_fc6_path()
    if not p.is_file():
        hint = "" if path is not None else f" (put {FC6_FILE} there or pass --generator PATH)"
        raise FeaturevisError(f"{p}: no such generator file{hint}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FeaturevisError(f"{p}: not a generator file ({type(e).__name__})") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        cfg = payload["config"]
        net = UpconvGenerator(cfg["code_shape"], cfg["size"], cfg["width"])
        try:
            net.load_state_dict(payload["state_dict"])
        except RuntimeError:
            raise FeaturevisError(f"{p}: damaged generator (weights do not fit its configuration)") from None
        enc = payload.get("encoder")
        gen = Generator(
            net,
            cfg["code_shape"],
            low=payload["low"],
            high=payload["high"],
            encoder=tuple(enc) if enc else None,
            meta=payload.get("meta", {}),
        )
    elif isinstance(payload, dict) and "defc7.weight" in {k.removeprefix("G.") for k in payload}:
        net = deepsim_fc6()
        try:
            net.load_state_dict({k.removeprefix("G."): v for k, v in payload.items()}, strict=True)
        except RuntimeError as e:
            raise FeaturevisError(f"{p}: not the DeePSiM fc6 generator ({str(e).splitlines()[0]})") from None
        gen = Generator(net, (4096,), low=0.0, to_image=caffe_bgr_to_unit, meta={"kind": "deepsim-fc6"})
    else:
        raise FeaturevisError(f"{p}: neither a featurevis generator nor the DeePSiM fc6 state dict")
    if bounds is not None:
        gen.set_bounds(high=load_bounds(bounds, gen.code_shape))
    return gen
