"""Feature inversion: which image does a layer think a photo is? (Mahendran & Vedaldi 2015)

Start from noise and *minimize* the distance between the image's representation at a layer
and the photo's, under a total-variation prior; the range constraint ([0, 1]) comes from the
parameterization's squashing. What survives in the reconstruction is what the layer keeps:
shallow layers give the photo back almost exactly, deep ones keep the parts and their layout
but lose colour, texture and exact position, so the reconstruction gets fuzzier with depth.

The loss is the *relative* squared error ``||f(x) - f(x0)||² / ||f(x0)||²`` so one weight
works at every layer of every model, and the same number is the figure reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..core import objectives as O
from ..core.engine import optimize, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, as_image, fit_size, make_grid
from ..core.layers import depth_layers, parse_layers
from ..core.losses import relative_error
from ..core.memory import check_request
from ..core.model import FeatureModel
from ..core.objectives import Objective
from ..core.params import Parameterization, make_param
from ..core.results import Result
from ..zoo import as_model

#: Default working side (longest side, px): the photo is resized to it before inverting.
DEFAULT_SIZE = 224


# -- the objective --------------------------------------------------------------------------
def match_features(targets: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None) -> Objective:
    """Minus the weighted relative squared distance to ``targets`` (``{layer: activation}``).

    Maximizing it makes the image's representation equal the targets'.
    """
    weights = dict(weights or {k: 1.0 for k in targets})

    def fn(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for name, t in targets.items():
            a = acts[name]
            total = total + weights[name] * relative_error(a, t.to(a).expand_as(a))
        return -total

    names = frozenset(targets)
    return Objective(fn, names, f"match({','.join(targets)})", tuple((n, None) for n in targets))


def _make_param(
    kind: str | Parameterization, hw: tuple[int, int], g: torch.Generator, channels: int = 3
) -> Parameterization:
    if isinstance(kind, Parameterization):
        if tuple(kind.size) != hw or kind.batch != 1:
            raise FeaturevisError(f"parameterization makes {kind.batch}×{kind.size}, the photo needs 1×{hw}")
        return kind
    return make_param(kind, 1, hw, sd=0.5, generator=g, channels=channels)


@dataclass
class InversionResult(Result):
    """A reconstruction and how close it came. Displays itself in notebooks; ``save()`` writes it."""

    image: torch.Tensor  # 1×3×H×W in [0, 1], CPU, the working size
    target: torch.Tensor  # the photo at the working size
    layers: dict[str, float]
    feature_error: float  # relative squared feature error of the reconstruction (weighted sum)
    random_error: float  # ... and of a uniform random image, for scale
    psnr: float  # pixel similarity to the photo, dB

    def __repr__(self) -> str:
        return (
            f"InversionResult({','.join(self.layers)}: feature error {self.feature_error:.3g} "
            f"(random {self.random_error:.3g}), PSNR {self.psnr:.1f} dB)"
        )


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two [0, 1] images, in dB."""
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-10)
    return float(10 * torch.log10(1 / mse))


def _feature_error(model: FeatureModel, x: torch.Tensor, targets: dict, weights: dict) -> float:
    with torch.no_grad():
        acts = model(x, list(targets))
        return float(sum(w * relative_error(acts[n], targets[n]).item() for n, w in weights.items()))


def invert(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    layers: str | Sequence[str] | Mapping[str, float],
    *,
    size: int | None = DEFAULT_SIZE,
    steps: int = 200,
    lr: float = 0.05,
    tv: float = 1.0,
    param: str | Parameterization = "fourier",
    jitter: int = 0,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> InversionResult:
    """Reconstruct ``image`` from its representation at ``layers``, starting from noise.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module.
        image: the photo (``1×3×H×W``/``3×H×W`` tensor in [0, 1], or a file path).
        layers: a layer, ``"a,b=0.5"``, a list or ``{layer: weight}``: all matched at once.
        size: longest side to work at (``None``: the photo's own size).
        tv: weight of the total-variation prior (the natural-image prior; more = smoother).
        param: ``"fourier"`` (default: 1/f spectrum, decorrelated colour), ``"pixel"`` or a parameterization.
        jitter: random shift in px each step (0: none); helps deep layers avoid stride artefacts.
    """
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    weights = parse_layers(fm, layers)
    photo = fit_size(as_image(image, "photo", fm.channels), size).to(dev)
    hw = tuple(photo.shape[-2:])
    check_request(fm, 1, *hw, what=f"inverting at {hw[1]}x{hw[0]} px", hint="use a smaller size", device=dev)
    with torch.no_grad():
        targets = {k: v.detach() for k, v in fm(photo, list(weights)).items()}
    obj = match_features(targets, weights) - tv * O.total_variation()
    validate(fm, obj, hw)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    p = _make_param(param, hw, g, fm.channels)
    tf = None
    if jitter:
        from ..core import transforms as T

        tf = T.Compose([T.Jitter(jitter)])
    result = optimize(
        fm,
        obj,
        p,
        steps=steps,
        lr=lr,
        transforms=tf,
        generator=g,
        progress=progress,
        description="invert",
        schedule="cosine",
    )
    final = result.images.to(dev)
    noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    return InversionResult(
        image=result.images,
        target=photo.cpu(),
        layers=weights,
        feature_error=_feature_error(fm, final, targets, weights),
        random_error=_feature_error(fm, noise, targets, weights),
        psnr=psnr(result.images, photo.cpu()),
        settings=dict(
            model=fm.name,
            size=hw,
            steps=steps,
            lr=lr,
            tv=tv,
            seed=seed,
            jitter=jitter,
            param=param if isinstance(param, str) else type(param).__name__,
        ),
        interrupted=result.interrupted,
        seconds=result.seconds,
    )


def invert_depths(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    layers: Sequence[str] | None = None,
    **kwargs,
) -> list[InversionResult]:
    """One reconstruction per layer, shallow to deep (default: :func:`depth_layers`)."""
    fm = as_model(model)
    names = list(layers) if layers else depth_layers(fm)
    out = []
    for name in names:
        r = invert(fm, image, name, **kwargs)
        out.append(r)
        if r.interrupted:
            break
    return out


def strip(results: Sequence[InversionResult], with_photo: bool = True) -> torch.Tensor:
    """The photo then each reconstruction in one row (``3×H×W``), shallow to deep."""
    imgs = [r.image for r in results]
    if with_photo and results:
        imgs.insert(0, results[0].target)
    return make_grid(torch.cat(imgs), ncols=len(imgs))
