"""Feature accentuation: what in *this* photo a unit responds to, by turning it up in place.

Hamblin et al. 2024 ("Feature Accentuation: Revealing 'What' Features Respond to in Natural
Images"): start from the photo itself, expressed in the Fourier/decorrelated parameterization
(:meth:`~featurevis.core.params.FourierImage.from_image` draws it exactly), raise a target
(a channel, a neuron, a class, a direction: any TARGET) under the usual random transforms, and
keep the image close to the photo *in the parameterization's space*. Because that space is
whitened (1/f-scaled spectrum, decorrelated colour), a step there changes the photo the way a
feature visualization grows structure, smooth and coloured, not as adversarial pixel noise;
the change map shows where the photo was changed, the image shows into what.

The regularizer here is the L2 distance to the photo's coefficients, applied *decoupled* (as
AdamW applies weight decay): after each Adam step the coefficients move ``lr * reg`` of the way
back to the photo's. As a loss term the same penalty would be weighed against the target's own
scale, which differs a hundredfold between a channel mean and a class logit, so one ``reg``
would mean something else for every target; decoupled, Adam's normalized step and the pull
balance at a distance that ``reg`` alone sets (a larger ``reg``: a closer image, higher SSIM).

What is reported is measured on the image a user gets (rounded to 8 bits, untransformed): the
target on the photo and on the accentuation, and their SSIM (scikit-image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.engine import Gradient, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.heatmaps import overlay
from ..core.images import ImageLike, make_grid, working_photo
from ..core.model import INPUT, FeatureModel
from ..core.objectives import Objective
from ..core.params import FourierImage, Parameterization
from ..core.results import Result
from ..core.targets import parse_target
from ..core.transforms import resolve_transforms
from ..core.visualize import visualize
from ..zoo import as_model

#: Default pull toward the photo (``lr * reg`` of the distance per step).
DEFAULT_REG = 1.0
DEFAULT_STEPS = 128
#: SSIM's window (scikit-image's default): the smallest photo side it can compare.
SSIM_WINDOW = 7


@dataclass
class AccentuationResult(Result):
    """The photo, its accentuation, where it changed and what that did to the target.

    ``save()`` and the notebook display show :meth:`panel`; ``image`` is the accentuation alone."""

    photo: torch.Tensor  # 1×3×H×W in [0, 1], the working size, on the 8-bit grid
    image: torch.Tensor  # 1×3×H×W, the accentuation, on the 8-bit grid
    target: str
    target_start: float  # the target on the photo ...
    target_end: float  # ... and on the accentuation (untransformed, 8-bit)
    ssim: float  # structural similarity of the accentuation to the photo (1: the same)

    @property
    def change(self) -> torch.Tensor:
        """``H×W``: how far the image moved around each pixel (RGB distance in [0, 1] units,
        box-averaged over 1/40 of the longest side, so the map shows regions, not pixels)."""
        d = (self.image - self.photo).norm(dim=1, keepdim=True)
        k = max(1, max(d.shape[-2:]) // 80) * 2 + 1
        return F.avg_pool2d(d, k, stride=1, padding=k // 2, count_include_pad=False)[0, 0]

    def panel(self) -> torch.Tensor:
        """Photo, accentuation, and the change map over the photo, side by side."""
        tiles = [self.photo, self.image, overlay(self.photo, self.change)]
        return make_grid(torch.cat(tiles), ncols=len(tiles))

    def shown(self) -> torch.Tensor:
        return self.panel()

    def __repr__(self) -> str:
        return (
            f"AccentuationResult({self.target}: {self.target_start:.3g} -> {self.target_end:.3g}, SSIM {self.ssim:.3f})"
        )


def structural_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM of two ``1×3×H×W`` images in [0, 1] (scikit-image's, over the colour channels)."""
    metrics = _skimage_metrics()
    x, y = (t[0].permute(1, 2, 0).double().cpu().numpy() for t in (a, b))
    return float(metrics.structural_similarity(x, y, channel_axis=2, data_range=1.0))


def _skimage_metrics():
    try:
        import skimage.metrics as metrics
    except ImportError:
        raise FeaturevisError("accentuation's SSIM needs scikit-image: pip install 'featurevis[explain]'") from None
    return metrics


def _value(model: FeatureModel, objective: Objective, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(Gradient()(model, objective, x, {INPUT: x}, backward=False)[0])


def _pull_toward(start: torch.Tensor, rate: float):
    """After each step: the coefficients move ``rate`` of the way back to ``start`` (decoupled L2)."""

    @torch.no_grad()
    def pull(param: Parameterization) -> None:
        s = param.spectrum
        s.sub_((s - start.to(s)).mul_(rate))

    return pull


def accentuate(
    model: str | torch.nn.Module | FeatureModel,
    photo: ImageLike,
    target: str | Objective,
    *,
    reg: float = DEFAULT_REG,
    size: int | None = None,
    steps: int = DEFAULT_STEPS,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> AccentuationResult:
    """Raise ``target`` in ``photo`` while keeping it near the photo in the Fourier parameterization.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module.
        photo: a ``1×3×H×W``/``3×H×W`` tensor in [0, 1] or a file path.
        target: a TARGET string (``_blocks.8:12``, ``_blocks.8:12@3,4``, ``class:"tabby"``,
            ``_blocks.8:random=7``, sums) or an :class:`Objective`.
        reg: the pull back toward the photo's coefficients (0: none; a larger one keeps the
            image closer to the photo); ``lr * reg`` must stay under 1.
        size: longest side to work at (default: the model's input size).
        lr: Adam's rate (default: the Fourier parameterization's).
    Returns:
        An :class:`AccentuationResult`; Ctrl-C returns the accentuation so far, ``interrupted`` set.
    """
    _skimage_metrics()  # a missing extra is one line before any work
    if not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg >= 0):
        raise FeaturevisError(f"reg must be a finite number >= 0, not {reg}")
    if steps < 1:
        raise FeaturevisError("steps must be at least 1")
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    obj = parse_target(fm, target) if isinstance(target, str) else target
    img = working_photo(photo, size or fm.input_size, dev, fm.channels)
    hw = tuple(img.shape[-2:])
    if min(hw) < SSIM_WINDOW:
        raise FeaturevisError(f"the photo is {hw[1]}x{hw[0]} px at this size; SSIM needs at least {SSIM_WINDOW}x7")
    validate(fm, obj, hw)
    param = FourierImage.from_image(img)
    rate = param.default_lr * reg if lr is None else lr * reg
    if rate >= 1:
        raise FeaturevisError(f"lr * reg is {rate:g}: the pull would overshoot the photo; keep it under 1")
    before = _value(fm, obj, img)
    result = visualize(
        fm,
        obj,
        size=hw,
        steps=steps,
        lr=lr,
        seed=seed,
        param=param,
        transforms=resolve_transforms("auto", max(hw), fm.patch_px),  # tuned at the longest side
        redirect_relu=0,  # the photo already excites the network; no dead start to rescue
        after_step=_pull_toward(param.spectrum.detach().clone(), rate),
        check=False,
        progress=progress,
        description="accentuate",
    )
    image = (torch.round(result.images * 255) / 255).to(dev)
    return AccentuationResult(
        photo=img.cpu(),
        image=image.cpu(),
        target=obj.name,
        target_start=before,
        target_end=_value(fm, obj, image),
        ssim=structural_similarity(img, image),
        settings=dict(
            model=fm.name,
            target=obj.name,
            reg=reg,
            size=hw,
            steps=steps,
            lr=param.default_lr if lr is None else lr,
            seed=seed,
        ),
        interrupted=result.interrupted,
        seconds=result.seconds,
    )
