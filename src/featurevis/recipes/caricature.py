"""Caricatures: an image whose activations at a layer are the photo's, exaggerated.

Lucid's caricature recipe (Olah et al., "Feature inversion caricatures"): instead of matching a
layer's representation of the photo (feature inversion, which stops once the image is as good
as the photo), *maximize* the dot product of the image's activations with the photo's, times
their cosine to the power p (:func:`~featurevis.core.objectives.dot_compare`). The dot product
keeps growing by making what the photo already excites stronger, the cosine keeps it from
growing anything else, so the picture shows what that layer sees in the photo, overdrawn:
edges and colours at shallow layers, fur, eyes and ears at deeper ones.

Transforms, and why the photo goes in the batch. The objective compares the two maps cell by
cell, so both must be seen at the same geometry. Computing the photo's activations once
(untransformed) and comparing them with a shifted, rotated, rescaled image's would reward the
image for drawing the photo's features where the transform moved them, i.e. a blurred,
displaced copy, and a rescaled image's map does not even have the photo's shape. Dropping the
transforms would make the caricature adversarial noise. So, as Lucid does, the photo is the
last image of the batch (:class:`~featurevis.core.params.WithReference`) and the batch goes
through :func:`~featurevis.core.transforms.paired` transforms, whose every random draw (pad,
jitter, affine, resolution, scale) is shared by the batch: the photo's activations are
recomputed each step under exactly the image's transform, for the price of one more image in
the forward pass. Several layers are one batch: one image per layer, then the photo.

Lucid also blurs the image a little every step; here that prior is a penalty on the image's
distance to its own blurred copy (:func:`~featurevis.core.objectives.blur`, weight
:data:`BLUR_WEIGHT`). Without it the caricatures are covered in pixel speckle; with it they are
smoother *and* closer to the photo's activations (chelsea, 128 px, 128 steps: cosine at
``_blocks.5`` 0.67 without, 0.73 at weight 30, 0.75 at 150).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core import objectives as O
from ..core.engine import activations, resolve_device
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, make_grid, working_photo
from ..core.layers import parse_layers
from ..core.memory import check_request
from ..core.model import FeatureModel
from ..core.params import FourierImage, WithReference, make_param
from ..core.results import Result
from ..core.transforms import paired
from ..core.visualize import visualize
from ..zoo import as_model

#: Default cosine power (Lucid's caricatures use 1 and up: more exaggerates only what the photo has).
DEFAULT_COSSIM_POW = 1.0
DEFAULT_STEPS = 256
#: Weight of the blur prior (the objective is ~1 when the image matches the photo's activations).
BLUR_WEIGHT = 150.0
INITS = ("noise", "photo")


@dataclass
class CaricatureResult(Result):
    """A photo and one caricature per layer, with how close each came to the photo's activations."""

    photo: torch.Tensor  # 1×3×H×W in [0, 1], the working size
    images: torch.Tensor  # L×3×H×W, one caricature per layer, on the 8-bit grid
    layers: list[str]
    cosine_start: list[float]  # per layer: cosine of the start's activations to the photo's
    cosine: list[float]  # ... and of the caricature's

    @property
    def image(self) -> torch.Tensor:
        """The strip: the photo, then the caricatures in the order of ``layers``."""
        return make_grid(torch.cat([self.photo, self.images]), ncols=len(self.layers) + 1)

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{n} {a:.2f}->{b:.2f}" for n, a, b in zip(self.layers, self.cosine_start, self.cosine, strict=True)
        )
        return f"CaricatureResult(cosine to the photo: {rows})"


def layer_list(model: FeatureModel, layers: str | Sequence[str] | None) -> list[str]:
    """A name, ``"a,b"`` or a list as checked layer names (default: the model's default layer)."""
    if layers is None:
        if not model.default_layer:
            raise FeaturevisError(f"{model.name} has no default layer: give one (-l LAYER)")
        layers = model.default_layer
    weights = parse_layers(model, layers)
    if any(w != 1.0 for w in weights.values()):
        raise FeaturevisError("caricature layers take no weights: give LAYER[,LAYER...] (one caricature each)")
    return list(weights)


def activation_cosines(
    model: FeatureModel, images: torch.Tensor, photo: torch.Tensor, layers: list[str]
) -> list[float]:
    """Image ``i``'s cosine to ``photo`` over the whole map of ``layers[i]`` (untransformed)."""
    with torch.no_grad():
        acts = activations(model, torch.cat([images, photo]).to(model.device), layers)
    out = []
    for i, name in enumerate(layers):
        a = acts[name].flatten(1)
        out.append(float(torch.nn.functional.cosine_similarity(a[i], a[-1], dim=0, eps=1e-6)))
    return out


def caricature(
    model: str | torch.nn.Module | FeatureModel,
    photo: ImageLike,
    layers: str | Sequence[str] | None = None,
    *,
    init: str = "noise",
    cossim_pow: float = DEFAULT_COSSIM_POW,
    size: int | None = None,
    steps: int = DEFAULT_STEPS,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: Callable[[], None] | None = None,
) -> CaricatureResult:
    """One caricature of ``photo`` per layer in ``layers``, all optimized in one batch.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module (transformers included: their
            token layers are compared as patch grids).
        photo: a ``1×3×H×W``/``3×H×W`` tensor in [0, 1] or a file path.
        layers: a layer, ``"a,b"`` or a list (default: the model's default layer).
        init: ``"noise"`` (Lucid's start: the picture is all the layer's) or ``"photo"`` (the
            Fourier parameterization drawing the photo: exaggerates it in place).
        cossim_pow: the cosine's power p in dot × cos^p (0: the plain dot product).
        size: longest side to work at (default: the model's input size).
        lr: Adam's rate (default: the Fourier parameterization's).
        on_step: called after every step (a job's progress; raising there stops the work).
    Returns:
        A :class:`CaricatureResult`; Ctrl-C returns the caricatures so far, ``interrupted`` set.
    """
    if init not in INITS:
        raise FeaturevisError(f"unknown init {init!r}: use {' or '.join(INITS)}")
    if not (math.isfinite(cossim_pow) and cossim_pow >= 0):
        raise FeaturevisError(f"cossim_pow must be a finite number >= 0, not {cossim_pow}")
    if steps < 1:
        raise FeaturevisError("steps must be at least 1")
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    names = layer_list(fm, layers)
    img = working_photo(photo, size or fm.input_size, dev, fm.channels)
    hw = tuple(img.shape[-2:])
    n = len(names)
    check_request(
        fm, n + 1, *hw, what=f"{n} caricature(s) at {hw[1]}x{hw[0]} px", hint="use a smaller size", device=dev
    )
    obj = O.as_objective(O.dot_compare(name, n, batch=i, cossim_pow=cossim_pow) for i, name in enumerate(names))
    obj = obj - BLUR_WEIGHT * O.blur()  # the photo's own blur term is a constant: it has no gradient
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if init == "photo":
        start = FourierImage.from_image(img.expand(n, -1, -1, -1))
    else:
        start = make_param("fourier", n, hw, generator=g, channels=fm.channels)
    with torch.no_grad():
        first = start().to(dev)
    cos_start = activation_cosines(fm, first, img, names)
    result = visualize(
        fm,
        obj,
        batch=n + 1,
        size=hw,
        steps=steps,
        lr=lr,
        seed=seed,
        param=WithReference(start, img),
        transforms=paired(max(hw), fm.patch_px),
        generator=g,
        progress=progress,
        description="caricature",
        after_step=(lambda _p: on_step()) if on_step else None,
    )
    images = torch.round(result.images[:n] * 255) / 255
    return CaricatureResult(
        photo=img.cpu(),
        images=images,
        layers=names,
        cosine_start=cos_start,
        cosine=activation_cosines(fm, images, img, names),
        settings=dict(
            model=fm.name,
            layers=names,
            init=init,
            cossim_pow=cossim_pow,
            size=hw,
            steps=steps,
            lr=start.default_lr if lr is None else lr,
            seed=seed,
        ),
        interrupted=result.interrupted,
        seconds=result.seconds,
    )
