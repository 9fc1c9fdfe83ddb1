"""Adversarial perturbations: the smallest change to a photo that changes what the network sees.

FGSM (Goodfellow et al. 2015) takes one step of size ``eps`` along the sign of the input
gradient; PGD (Madry et al. 2018) takes many smaller steps from a random start, projecting back
into the ``eps`` ball after each. Both run on the one engine: the photo plus a bounded delta is a
parameterization (:class:`~featurevis.param.PerturbedImage`), the class loss is an objective,
and the steepest-ascent step is an optimizer.

The result is checked on the image a user gets: the adversarial photo is rounded to 8 bits (a
PNG), inside the ball, and the prediction is read off that rounded image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core import objectives as O
from ..core.engine import DirectionStep, optimize, resolve_device
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, as_image, fit_size, make_grid
from ..core.memory import check_request
from ..core.model import FeatureModel, class_label
from ..core.params import PerturbedImage
from ..core.results import Result
from ..zoo import as_model

#: Default working side (longest side, px), as for the other photo recipes.
DEFAULT_SIZE = 224
#: Default L-inf budget: two grey levels of an 8-bit image, invisible to a person.
DEFAULT_EPS = 2 / 255
#: Default PGD steps; the step size is 2.5·eps/steps (Madry et al.), so the walk can cross the ball.
DEFAULT_STEPS = 40


class SteepestAscent(DirectionStep):
    """The sign of the gradient (L-inf) or its unit vector per image (L2): the steepest step for
    the norm the perturbation is measured in, so ``lr`` is the distance moved in that norm."""

    def __init__(self, params, lr: float, norm: str = "linf"):
        super().__init__(params, lr, norm=norm)

    def direction(self, grad: torch.Tensor, group: dict) -> torch.Tensor:
        if group["norm"] == "linf":
            return grad.sign()
        return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))


@dataclass
class AttackResult(Result):
    """An adversarial photo, its perturbation and what the model says before and after."""

    image: torch.Tensor  # 1×3×H×W adversarial photo in [0, 1], on the 8-bit grid when quantized
    photo: torch.Tensor  # the clean photo at the working size
    original: int  # the model's class for the clean photo
    original_prob: float
    predicted: int  # the model's class for the adversarial photo
    predicted_prob: float
    target: int | None  # the class aimed for (None: any class but the original)
    target_prob: float | None
    eps: float
    norm: str
    method: str
    labels: list[str] | None = None

    @property
    def perturbation(self) -> torch.Tensor:
        return self.image - self.photo

    @property
    def success(self) -> bool:
        """Targeted: the target is now the top class; untargeted: the top class changed; never
        for an image that is not finite."""
        if not bool(torch.isfinite(self.image).all()):
            return False
        return self.predicted == self.target if self.target is not None else self.predicted != self.original

    @property
    def linf(self) -> float:
        return float(self.perturbation.abs().max())

    @property
    def l2(self) -> float:
        return float(self.perturbation.norm())

    def magnified(self) -> torch.Tensor:
        """The perturbation on its own, stretched so ±eps (L-inf) or its largest value is
        black/white around mid-grey."""
        d = self.perturbation
        scale = self.eps if self.norm == "linf" else float(d.abs().max().clamp_min(1e-12))
        return (0.5 + 0.5 * d / scale).clamp(0, 1)

    def panel(self) -> torch.Tensor:
        """Photo, magnified perturbation, adversarial photo side by side."""
        return make_grid(torch.cat([self.photo, self.magnified(), self.image]), ncols=3)

    def name(self, cls: int | None) -> str:
        if cls is None:
            return "-"
        label = class_label(self.labels, cls)
        return label if label == str(cls) else f"{cls} {label}"

    def __repr__(self) -> str:
        tgt = f", target {self.name(self.target)}" if self.target is not None else ""
        return (
            f"AttackResult({self.method} {self.norm} eps={self.eps:.4g}{tgt}: "
            f"{self.name(self.original)} ({self.original_prob:.1%}) -> {self.name(self.predicted)} "
            f"({self.predicted_prob:.1%}), {'success' if self.success else 'failed'})"
        )


def _quantize(photo: torch.Tensor, delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Round ``delta`` to whole grey levels without leaving the ball (``photo`` is on the grid)."""
    q = torch.round(delta * 255)
    if norm == "linf":
        q = q.clamp(-math.floor(eps * 255 + 1e-6), math.floor(eps * 255 + 1e-6))
    elif float(q.norm()) / 255 > eps:
        q = q.sign() * torch.floor(q.abs().minimum((delta * 255).abs()) + 1e-4)  # toward zero
    return ((photo * 255 + q).clamp(0, 255)) / 255


def attack(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    target: int | str | None = None,
    *,
    method: str = "pgd",
    eps: float = DEFAULT_EPS,
    norm: str = "linf",
    steps: int = DEFAULT_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    size: int | None = DEFAULT_SIZE,
    quantize: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> AttackResult:
    """Perturb ``image`` within ``eps`` so the model misclassifies it (as ``target``, if given).

    Args:
        target: a class index or name to reach; ``None`` pushes away from the clean prediction.
        method: ``"pgd"`` (iterated, random start) or ``"fgsm"`` (one step of size ``eps``).
        eps: the budget, in [0, 1] pixel units (``2/255``: two grey levels), per pixel for
            ``"linf"``, over the whole image for ``"l2"``.
        steps, step_size: PGD's iterations and step (default ``2.5 * eps / steps``).
        size: longest side the photo is attacked at (larger photos shrink; ``None``: its own size).
        quantize: round the result to an 8-bit image (what a saved PNG holds) and judge that.
    """
    if method not in ("pgd", "fgsm"):
        raise FeaturevisError(f"unknown attack method {method!r}: use pgd or fgsm")
    if norm not in ("linf", "l2"):
        raise FeaturevisError(f"unknown norm {norm!r}: use linf or l2")
    if not (math.isfinite(eps) and eps > 0):
        raise FeaturevisError(f"eps must be a positive number, not {eps}")
    if norm == "linf" and eps >= 1:
        raise FeaturevisError(f"eps {eps} allows any image; L-inf eps is in pixel units, e.g. 2/255")
    if quantize and norm == "linf" and eps * 255 < 1 - 1e-6:
        raise FeaturevisError(f"eps {eps:.4g} is under one grey level (1/255): an 8-bit image cannot hold it")
    if steps < 1:
        raise FeaturevisError("steps must be at least 1")
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    photo = fit_size(as_image(image, "photo", fm.channels), size, enlarge=False)
    if quantize:
        photo = torch.round(photo * 255) / 255
    photo = photo.to(dev)
    check_request(fm, 1, *photo.shape[-2:], what=f"attacking at {photo.shape[-1]}x{photo.shape[-2]} px", device=dev)
    if norm == "l2" and eps >= math.sqrt(photo.numel()):
        raise FeaturevisError(
            f"eps {eps:g} allows any image: no two {photo.shape[-1]}x{photo.shape[-2]} images are more than "
            f"{math.sqrt(photo.numel()):.0f} apart in L2; L2 eps is in pixel units, e.g. 0.5"
        )
    probs = fm.predict(photo)[0]
    original = int(probs.argmax())
    tgt = None if target is None else fm.class_index(target)
    if tgt is not None and tgt == original:
        raise FeaturevisError(f"the photo is already classified as {tgt}; pick another target")
    obj = O.class_log_prob(tgt) if tgt is not None else -O.class_log_prob(original)

    g = torch.Generator().manual_seed(seed)
    if method == "fgsm":
        steps, lr, init = 1, eps, None
    else:
        lr = step_size if step_size is not None else 2.5 * eps / steps
        init = None
        if random_start:
            if norm == "linf":
                init = (torch.rand(photo.shape, generator=g) * 2 - 1) * eps
            else:
                r = torch.randn(photo.shape, generator=g)
                init = r / r.norm() * eps * float(torch.rand((), generator=g))
    param = PerturbedImage(photo, eps, norm, init=None if init is None else init.to(dev))
    result = optimize(
        fm,
        obj,
        param,
        steps=steps,
        lr=lr,
        generator=g,
        optimizer=lambda ps: SteepestAscent(ps, lr, norm),
        progress=progress,
        description=method,
    )
    adv = result.images.to(dev)
    if quantize:
        adv = _quantize(photo, adv - photo, eps, norm)
    after = fm.predict(adv)[0]
    predicted = int(after.argmax())
    return AttackResult(
        image=adv.cpu(),
        photo=photo.cpu(),
        original=original,
        original_prob=float(probs[original]),
        predicted=predicted,
        predicted_prob=float(after[predicted]),
        target=tgt,
        target_prob=None if tgt is None else float(after[tgt]),
        eps=eps,
        norm=norm,
        method=method,
        labels=fm.labels,
        settings=dict(
            model=fm.name,
            method=method,
            eps=eps,
            norm=norm,
            steps=steps,
            step_size=lr,
            random_start=random_start and method == "pgd",
            size=tuple(photo.shape[-2:]),
            quantize=quantize,
            seed=seed,
        ),
        interrupted=result.interrupted,
        seconds=result.seconds,
    )
