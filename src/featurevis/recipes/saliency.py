"""Gradients and saliency: which pixels the network's decision is most sensitive to.

- the raw input gradient of a class logit (Simonyan et al. 2014), the "steepest descent
  direction" a pixel-space optimizer follows: mostly high-frequency noise;
- the same gradient as a Fourier/decorrelated parameterization sees it (``J Jᵀ g``): the step
  that :func:`~featurevis.render` actually takes, smooth and coloured, which is why feature
  visualization preconditions;
- SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the photo;
- gradient × input (Shrikumar et al. 2016), in the network's own normalized input space.

Heat maps are drawn over the photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..core import objectives as O
from ..core.engine import resolve_device
from ..core.errors import FeaturevisError
from ..core.gradients import noisy_mean, objective_gradient, zero_point
from ..core.heatmaps import colorize as colorize  # re-exported: saliency drew heat maps before core did
from ..core.heatmaps import overlay, signed_image
from ..core.images import ImageLike, as_image, fit_size, make_grid
from ..core.memory import check_request
from ..core.model import FeatureModel
from ..core.params import make_param
from ..core.results import Result
from ..zoo import as_model

DEFAULT_SIZE = 224
#: SmoothGrad defaults from the paper: 50 samples in batches, noise 15 % of the input range.
DEFAULT_SAMPLES = 32
DEFAULT_NOISE = 0.15
#: The heat-map kinds, in panel order.
MAPS = ("gradient", "preconditioned", "smoothgrad", "grad_x_input")


def input_gradient(model: FeatureModel, x: torch.Tensor, cls: int) -> torch.Tensor:
    """d logit[cls] / d x for each image of the batch ``x``."""
    return objective_gradient(model, O.class_logit(cls), x)[1]


def preconditioned(grad: torch.Tensor, kind: str = "fourier", decorrelate: bool = True) -> torch.Tensor:
    """The image-space step that gradient ascent on a ``kind`` parameterization takes: ``J Jᵀ g``.

    ``J`` is the parameterization's Jacobian at its neutral point; for ``fourier`` it scales
    frequencies by 1/f and mixes colours along ImageNet's principal components.
    """
    n, c, h, w = grad.shape
    p = make_param(kind, n, (h, w), sd=0.0, decorrelate=decorrelate, channels=c).to(grad.device)
    params = list(p.parameters())
    out = p()
    jt_g = torch.autograd.grad(out, params, grad_outputs=grad, retain_graph=True)
    # J u by the double-backward trick: J u = d/dv <Jᵀ v, u>, with v a dummy cotangent.
    v = torch.zeros_like(out, requires_grad=True)
    jt_v = torch.autograd.grad(out, params, grad_outputs=v, create_graph=True)
    (step,) = torch.autograd.grad(sum((a * b).sum() for a, b in zip(jt_v, jt_g, strict=True)), v)
    return step.detach()


#: Kept under its old name: the preprocessing's zero point is core's now.
_zero_point = zero_point


@dataclass
class SaliencyResult(Result):
    """A photo's gradients for one class, and the heat maps drawn from them."""

    photo: torch.Tensor  # 1×3×H×W in [0, 1] at the working size
    target: int
    target_name: str
    probability: float
    gradient: torch.Tensor  # raw d logit / d x, 1×3×H×W
    preconditioned: torch.Tensor  # J Jᵀ g under the Fourier/decorrelated parameterization
    smoothgrad: torch.Tensor  # mean gradient over noisy copies
    grad_x_input: torch.Tensor  # gradient × (input − the preprocessing's zero), 1×3×H×W

    def heat(self, kind: str) -> torch.Tensor:
        """An ``H×W`` non-negative saliency map: absolute values summed over colour channels."""
        if kind not in MAPS:
            raise FeaturevisError(f"unknown saliency map {kind!r}: choose from {', '.join(MAPS)}")
        return getattr(self, kind)[0].abs().sum(0)

    def overlay(self, kind: str, alpha: float = 0.6) -> torch.Tensor:
        """The heat map in colour over a dimmed grey copy of the photo."""
        return overlay(self.photo, self.heat(kind), alpha)

    @property
    def image(self) -> torch.Tensor:
        """Photo, raw gradient, preconditioned gradient, SmoothGrad and gradient × input."""
        tiles = [
            self.photo,
            signed_image(self.gradient),
            signed_image(self.preconditioned),
            self.overlay("smoothgrad"),
            self.overlay("grad_x_input"),
        ]
        # a grayscale photo's tiles in colour beside the heat maps; an RGB + depth photo shows
        # its RGB (the heat maps sum over every channel)
        tiles = [t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t[:, :3] for t in tiles]
        return make_grid(torch.cat(tiles), ncols=len(tiles))

    def box_concentration(self, kind: str, box: Sequence[float], against: Sequence[float] | None = None) -> float:
        """Mean saliency inside ``box`` over the mean in ``against`` (default: everywhere else).

        Boxes are ``(x0, y0, x1, y1)`` as fractions of width and height; > 1 means the map
        favours the box.
        """
        h = self.heat(kind)
        inside = _box_mask(h.shape, box)
        other = ~inside if against is None else _box_mask(h.shape, against) & ~inside
        if not inside.any() or not other.any():
            raise FeaturevisError("box is empty or covers the whole image")
        return float(h[inside].mean() / h[other].mean().clamp_min(1e-20))

    def __repr__(self) -> str:
        h, w = self.photo.shape[-2:]
        return f"SaliencyResult(class {self.target} {self.target_name} ({self.probability:.1%}), {w}x{h})"


def _box_mask(shape: Sequence[int], box: Sequence[float]) -> torch.Tensor:
    h, w = shape
    x0, y0, x1, y1 = box
    m = torch.zeros(h, w, dtype=torch.bool)
    m[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)] = True
    return m


def saliency(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    target: int | str | None = None,
    *,
    size: int | None = DEFAULT_SIZE,
    samples: int = DEFAULT_SAMPLES,
    noise: float = DEFAULT_NOISE,
    batch: int = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> SaliencyResult:
    """Gradient views of ``image`` for class ``target`` (default: the model's top class).

    Args:
        samples: noisy copies SmoothGrad averages (batched ``batch`` at a time).
        noise: their Gaussian noise, as a fraction of the [0, 1] pixel range.
        size: longest side to work at (larger photos shrink; ``None``: the photo's own size).
        progress: a progress bar over the SmoothGrad samples.
    Returns:
        A :class:`SaliencyResult`. Ctrl-C during SmoothGrad keeps the average of the samples done
        so far (``settings["samples"]`` says how many; ``interrupted`` is set); before the first
        batch it raises ``KeyboardInterrupt``, there being no average to keep.
    """
    if samples < 1:
        raise FeaturevisError("samples must be at least 1")
    if not 0 <= noise < 1:
        raise FeaturevisError(f"noise must be in [0, 1), not {noise}")
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    photo = fit_size(as_image(image, "photo", fm.channels), size, enlarge=False).to(dev)
    h, w = photo.shape[-2:]
    check_request(fm, min(batch, samples), h, w, copies=4, what=f"saliency at {w}x{h} px", device=dev)
    probs = fm.predict(photo)[0]
    cls = int(probs.argmax()) if target is None else fm.class_index(target)
    grad = input_gradient(fm, photo, cls)
    g = torch.Generator().manual_seed(seed)
    smooth, done, interrupted = noisy_mean(
        lambda noisy: input_gradient(fm, noisy, cls).sum(0, keepdim=True),
        photo,
        samples,
        noise,
        batch=batch,
        generator=g,
        progress=progress,
    )
    return SaliencyResult(
        photo=photo.cpu(),
        target=cls,
        target_name=fm.class_name(cls),
        probability=float(probs[cls]),
        gradient=grad.cpu(),
        preconditioned=preconditioned(grad).cpu(),
        smoothgrad=smooth.cpu(),
        grad_x_input=(grad * (photo - zero_point(fm, photo))).cpu(),
        settings=dict(model=fm.name, size=tuple(photo.shape[-2:]), samples=done, noise=noise, seed=seed),
        interrupted=interrupted,
    )
