"""Fast style transfer (Johnson et al. 2016): train a small network once, stylize in one pass.

Optimization-based style transfer (:mod:`featurevis.style`) runs hundreds of forward and
backward passes of the big network per photo. Here a small image-to-image network learns to
do it: it is trained with the *same* perceptual losses (Gram style loss + content loss +
total variation, measured by the frozen model) on random, augmented crops of a few photos,
and then stylizes any photo in one forward pass of its own, orders of magnitude faster.

The network (:class:`TransformNet`): a 9x9 conv, two stride-2 convs, residual blocks, two
nearest-upsample convs and a 9x9 conv, with instance norm and reflection padding. Its output
is added to the input in logit space and its last conv starts at zero, so training starts
from the identity and only has to learn the *change*: on two CPU cores a few minutes on
scikit-image's sample photos already give a clearly stylized image.

Training uses :func:`featurevis.optimize`: the parameterization is "the network applied to a
fresh random batch of crops" and hands the crops to the content loss as an extra output beside
the images, so the one loop drives it like any other recipe.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core import objectives as O
from ..core.engine import activations, optimize, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, as_image, atomic_write, check_path, fit_size
from ..core.losses import perceptual, resolve_layers, style_grams
from ..core.memory import check_request
from ..core.model import FeatureModel
from ..core.objectives import Acts, Objective
from ..core.params import NetOnPhotoBatches
from ..core.photos import training_photos
from ..zoo import as_model

FORMAT = "featurevis-style-net"


# -- the network ----------------------------------------------------------------------------
def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
            nn.ReLU(),
            _conv(c, c, 3),
            nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformNet(nn.Module):
    """Image → stylized image, any size (padded to a multiple of 4 inside), RGB in [0, 1]."""

    def __init__(self, width: int = 16, blocks: int = 3):
        super().__init__()
        self.width, self.blocks = width, blocks
        w = width

        def block(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
            return [_conv(cin, cout, k, stride), nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]

        up = [nn.Upsample(scale_factor=2, mode="nearest")]
        self.body = nn.Sequential(
            *block(3, w, 9),
            *block(w, 2 * w, 3, 2),
            *block(2 * w, 4 * w, 3, 2),
            *[_Residual(4 * w) for _ in range(blocks)],
            *up,
            *block(4 * w, 2 * w, 3),
            *up,
            *block(2 * w, w, 3),
            _conv(w, 3, 9),
        )
        last = self.body[-1][1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        delta = self.body(xp)[..., :h, :w]
        return torch.sigmoid(torch.logit(x.clamp(1e-3, 1 - 1e-3)) + delta)


#: Where :class:`_NetOnBatches` hands the objective the crops it just stylized.
SOURCE = "source"


class _NetOnBatches(NetOnPhotoBatches):
    """The network applied to a fresh batch of crops each call, so :func:`optimize` trains it.

    :meth:`images_and_extras` returns the crops as the extra ``"source"``: the content loss
    compares each stylized crop with its own source, from the same call.
    """

    def images_and_extras(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        crops = self.crops()
        return self.net(crops), {SOURCE: crops}


# -- results and files ------------------------------------------------------------------------
@dataclass
class StyleNet:
    """A trained transformation network and how it was trained; ``save()``/``load_style_net``."""

    net: TransformNet
    meta: dict = field(default_factory=dict)

    def __call__(self, photo: ImageLike, size: int | None = None) -> torch.Tensor:
        return stylize(self, photo, size)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        p = Path(path)
        payload = {
            "format": FORMAT,
            "version": 1,
            "config": {"width": self.net.width, "blocks": self.net.blocks},
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "meta": self.meta,
        }
        with atomic_write(p) as tmp:
            torch.save(payload, tmp)
        return p


def load_style_net(path: str | os.PathLike) -> StyleNet:
    """Read a network written by :meth:`StyleNet.save`; one-line errors for anything else."""
    p = Path(path)
    if not p.is_file():
        raise FeaturevisError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean "not our file"
        raise FeaturevisError(f"{p}: not a style network file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FeaturevisError(f"{p}: not a style network written by featurevis style-train")
    cfg = payload["config"]
    net = TransformNet(int(cfg["width"]), int(cfg["blocks"]))
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise FeaturevisError(f"{p}: damaged style network (weights do not fit its configuration)") from None
    return StyleNet(net.eval(), dict(payload.get("meta", {})))


def check_net_path(path: str | os.PathLike) -> Path:
    """Refuse a style-network path before minutes of training: wrong suffix or unwritable."""
    p = Path(path)
    if p.suffix.lower() not in (".pt", ".pth"):
        raise FeaturevisError(f"{p}: a style network file must end in .pt or .pth")
    check_path(p)
    return p


def stylize(net: StyleNet | TransformNet, photo: ImageLike, size: int | None = None) -> torch.Tensor:
    """One forward pass: ``1×3×H×W`` stylized photo (at ``size`` longest side, or its own)."""
    module = net.net if isinstance(net, StyleNet) else net
    x = fit_size(as_image(photo, "photo"), size)
    if min(x.shape[-2:]) < 4:
        raise FeaturevisError(f"photo is {x.shape[-1]}x{x.shape[-2]}; need at least 4 px a side")
    dev = next(module.parameters()).device
    h, w = x.shape[-2:]
    what = f"stylizing at {w}x{h} px"
    check_request(module, 1, h, w, grad=False, copies=2, what=what, hint="use a smaller size", device=dev)
    with torch.no_grad():
        return module.eval()(x.to(dev)).cpu()


def train_style_net(
    model: str | torch.nn.Module | FeatureModel,
    style: ImageLike,
    images: Sequence[ImageLike] | str | os.PathLike | None = None,
    *,
    minutes: float = 2.5,
    steps: int | None = None,
    size: int = 128,
    batch: int = 4,
    lr: float = 2e-3,
    style_weight: float = 10.0,
    content_weight: float = 1.0,
    tv: float = 0.3,
    style_layers: str | Sequence[str] | None = None,
    content_layer: str | None = None,
    width: int = 16,
    blocks: int = 3,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> StyleNet:
    """Train a :class:`TransformNet` to stylize like ``style`` (Johnson et al.).

    Args:
        images: training photos (tensors/paths, or a folder); default: scikit-image samples.
        minutes: training time budget (steps are calibrated to fit it) unless ``steps`` is given.
        size, batch: side of the random square crops and crops per step.
        style_weight, content_weight, tv, style_layers, content_layer: as in
            :func:`featurevis.style_transfer`.
    """
    fm = as_model(model)
    fm.require_rgb("fast style's image network")
    dev = resolve_device(device)
    fm.to(dev)
    s_layers, c_layer = resolve_layers(fm, style_layers, content_layer)
    if size < 32:
        raise FeaturevisError(f"crop size {size} is too small; use at least 32 px")
    style_img = as_image(style, "style image")
    photos = training_photos(images, 2 * size)
    grams = style_grams(fm, [style_img], [1.0], s_layers, size)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = TransformNet(width, blocks).to(dev)
    param = _NetOnBatches(net, photos, batch, size, g)

    def content_target(acts: Acts) -> torch.Tensor:
        with torch.no_grad():
            return activations(fm, acts[SOURCE], [c_layer])[c_layer]

    obj = perceptual(grams, c_layer, content_target, style_weight, content_weight)
    obj = obj - tv * O.total_variation()
    validate(fm, obj, size, batch)

    def adam(params):
        return torch.optim.Adam(params, lr=lr)

    if steps is None:
        steps = _calibrate(fm, obj, param, adam, minutes)

    start = time.perf_counter()
    r = optimize(
        fm,
        obj,
        param,
        steps=steps,
        generator=g,
        optimizer=adam,
        progress=progress,
        description="style-train",
        schedule="cosine",
    )
    net.eval()
    hist = r.history.mean(1)
    k = max(1, len(hist) // 10)
    meta = dict(
        model=fm.name,
        style_layers=s_layers,
        content_layer=c_layer,
        style_weight=style_weight,
        content_weight=content_weight,
        tv=tv,
        size=size,
        batch=batch,
        steps=len(hist),
        lr=lr,
        seed=seed,
        seconds=time.perf_counter() - start,
        interrupted=r.interrupted,
        loss_start=float(-hist[:k].mean()) if len(hist) else math.nan,
        loss_end=float(-hist[-k:].mean()) if len(hist) else math.nan,
    )
    return StyleNet(net, meta)


def _calibrate(
    fm: FeatureModel,
    obj: Objective,
    param: _NetOnBatches,
    optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer],
    minutes: float,
) -> int:
    """Steps that fit in ``minutes``: time three real :func:`optimize` steps on a throwaway
    copy of the network (the first one warms up, so the faster of the other two counts)."""
    if not minutes > 0:
        raise FeaturevisError("minutes must be positive")
    probe = copy.deepcopy(param)
    probe.g = torch.Generator().manual_seed(12345)
    ends: list[float] = []
    r = optimize(
        fm,
        obj,
        probe,
        steps=3,
        generator=torch.Generator(),
        optimizer=optimizer,
        progress=False,
        after_step=lambda _p: ends.append(time.perf_counter()),
    )
    if r.interrupted:
        raise KeyboardInterrupt  # Ctrl-C before training started: stop, as anywhere else
    # Steps 2 and 3 (from the end of one to the end of the next); a NaN that cut the probe short
    # leaves only the whole probe's time, an overestimate.
    per_step = min(b - a for a, b in itertools.pairwise(ends)) if len(ends) == 3 else r.seconds
    return max(1, int(minutes * 60 / per_step))
