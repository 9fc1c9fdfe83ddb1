"""Differentiable random transforms for transformation robustness (Olah et al. 2017).

An image that excites a unit only at one exact pixel alignment is adversarial noise; asking it
to keep exciting the unit while it is shifted, scaled, rotated and seen at a lower resolution
leaves the structure a person (and another network) would recognize. Every transform takes the
batch and a ``torch.Generator`` so a seed fixes the whole run. Each image of a batch gets its
own random parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import FeaturevisError

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, g)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class Pad:
    """Pad every side by ``pixels`` with a constant (grey), so edges can move inward."""

    def __init__(self, pixels: int, fill: float = 0.5):
        self.pixels, self.fill = pixels, fill

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return F.pad(x, (self.pixels,) * 4, value=self.fill)

    def __repr__(self) -> str:
        return f"Pad({self.pixels})"


class Jitter:
    """Random crop that shifts the image by up to ``pixels`` (one offset for the batch)."""

    def __init__(self, pixels: int):
        self.pixels = pixels

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        d = self.pixels
        if d <= 0:
            return x
        ox, oy = (int(v) for v in torch.randint(0, d + 1, (2,), generator=g))
        h, w = x.shape[-2:]
        return x[..., oy : h - d + oy, ox : w - d + ox]

    def __repr__(self) -> str:
        return f"Jitter({self.pixels})"


class RandomAffine:
    """Per-image random scale, rotation and shift in one bilinear resampling.

    ``scale`` > 1 zooms in; uncovered area is filled with ``fill``. ``translate`` is a fraction
    of the image size. Composing them into one ``grid_sample`` costs one resampling instead of
    three.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.9, 1.1),
        degrees: float = 10.0,
        translate: float = 0.0,
        fill: float = 0.5,
        per_image: bool = True,
    ):
        self.scale, self.degrees, self.translate, self.fill = scale, degrees, translate, fill
        #: ``False``: one draw for the whole batch (images that are compared position by position).
        self.per_image = per_image

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        n = b if self.per_image else 1
        s = _uniform(g, n, *self.scale).expand(b)
        a = _uniform(g, n, -self.degrees, self.degrees).expand(b) * (math.pi / 180)
        t = _uniform(g, 2 * n, -2 * self.translate, 2 * self.translate).view(n, 2).expand(b, 2)
        cos, sin = torch.cos(a) / s, torch.sin(a) / s
        theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
        out = F.grid_sample(x - self.fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out + self.fill

    def __repr__(self) -> str:
        return f"RandomAffine(scale={self.scale}, degrees={self.degrees}, translate={self.translate})"


class RandomScale:
    """Resize the whole batch by a random factor from ``factors`` (antialiased when shrinking).

    Shrinking shows the network a lower-resolution copy, so only structure that survives
    blurring is rewarded; it also makes the step cheaper. Output sides are rounded to
    multiples of ``quantum`` px: every new input shape costs oneDNN/cuDNN a new kernel plan,
    and a few hundred distinct shapes would thrash their caches (measured: 4x slower steps).
    """

    def __init__(self, factors: tuple[float, float] = (0.6, 1.0), quantum: int = 16):
        self.factors, self.quantum = factors, quantum

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        f = float(_uniform(g, 1, *self.factors))
        h, w = x.shape[-2:]
        q = self.quantum
        size = (max(q, round(h * f / q) * q), max(q, round(w * f / q) * q))
        if size == (h, w):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=size[0] < h)

    def __repr__(self) -> str:
        return f"RandomScale({self.factors}, quantum={self.quantum})"


class RandomResolution:
    """With probability ``p``, lose detail without changing scale: shrink by a random factor
    (antialiased) and enlarge back. Rewards structure that survives blur and low resolution."""

    def __init__(self, factors: tuple[float, float] = (0.4, 1.0), p: float = 0.5, quantum: int = 16):
        self.factors, self.p, self.quantum = factors, p, quantum

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if float(torch.rand(1, generator=g)) >= self.p:
            return x
        h, w = x.shape[-2:]
        small = RandomScale(self.factors, self.quantum)(x, g)
        if small.shape[-2:] == (h, w):
            return x
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

    def __repr__(self) -> str:
        return f"RandomResolution({self.factors}, p={self.p}, quantum={self.quantum})"


class RandomRotate(RandomAffine):
    """Per-image random rotation by up to ``degrees``."""

    def __init__(self, degrees: float = 10.0, fill: float = 0.5):
        super().__init__(scale=(1.0, 1.0), degrees=degrees, fill=fill)


class Noise:
    """Add Gaussian pixel noise: patterns that live in single pixels stop paying off."""

    def __init__(self, std: float = 0.02):
        self.std = std

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return x + self.std * torch.randn(x.shape, generator=g).to(x)

    def __repr__(self) -> str:
        return f"Noise({self.std})"


#: The render side the pixel amounts of the standard transforms were tuned at.
REFERENCE_SIZE = 224
#: Output sides are multiples of this many px at the reference size.
QUANTUM = 16
#: Renders smaller than this are small-input (CIFAR-size) ones, whose quantization and Fourier
#: step are scaled down from the 224-px tuning; from here up the tuning is kept as measured
#: (``benchmarks/quality.py``; at 64 px scaling both changed tuned results of other recipes
#: without a measured gain: ``benchmarks/small_models.py``).
SMALL_SIDE = 64


def quantum(size: int | None) -> int:
    """The side quantization for ``size``-px renders: 16 px, or for a small-input render
    (under :data:`SMALL_SIDE`) proportionally less (2 px at 32, 3 at 48).

    Why: at a fixed 16 px, a 32-px render could only be seen at 16, 32 or 48 px, so the
    "random" scale of 0.7-1.2 was one of two values and the lower resolution always 16 px.
    """
    side = size or REFERENCE_SIZE
    if side >= SMALL_SIDE:
        return QUANTUM
    return max(1, round(QUANTUM * side / REFERENCE_SIZE))


def standard(size: int | None = None) -> Compose:
    """The default set, tuned for transfer to other networks (``benchmarks/quality.py``).

    Pad and jitter; a per-image affine (scale 0.8-1.2, +-15 degrees, small shift); half of
    the steps at a lower resolution (blur without changing scale); a random final scale of
    0.7-1.2 (objects must work at the sizes other networks see them); light pixel noise.
    ``size`` is the render size; padding, jitter and the side quantization scale with it
    (tuned at 224 px; a 32-px CIFAR-size render pads 2 px, not 12: ``benchmarks/small_models.py``).
    """
    k = (size or REFERENCE_SIZE) / REFERENCE_SIZE
    q = quantum(size)
    return Compose(
        [
            Pad(round(12 * k)),
            Jitter(round(8 * k)),
            RandomAffine(scale=(0.8, 1.2), degrees=15.0, translate=0.03),
            RandomResolution((0.4, 1.0), p=0.5, quantum=q),
            RandomScale((0.7, 1.2), quantum=q),
            Noise(0.03),
        ]
    )


def patch(size: int | None = None, patch_px: int = 16) -> Compose:
    """The default for vision transformers: shifts over a whole patch period, then the standard
    set's affine, lower resolution and noise, at exactly the render size.

    A patch model cuts its input into a fixed grid, and an image optimized at one alignment
    grows a checkerboard with the patch's period (``benchmarks/patch_artifacts.py``). Padding by
    one patch and cropping back at a random offset of 0..2 patches visits every residue modulo
    the patch; the affine adds sub-pixel moves. The output keeps the render size, so a ViT sees
    as many tokens as at its own size (a larger image would cost more tokens, a rescale one more
    resample, which a fixed-size model would undo anyway).
    """
    p = max(patch_px, round(8 * (size or REFERENCE_SIZE) / REFERENCE_SIZE))
    return Compose(
        [
            Pad(p),
            Jitter(2 * p),
            RandomAffine(scale=(0.8, 1.2), degrees=15.0, translate=0.03),
            RandomResolution((0.4, 1.0), p=0.5, quantum=quantum(size)),
            Noise(0.03),
        ]
    )


def paired(size: int | None = None, patch_px: int | None = None) -> Compose:
    """The ``"auto"`` set (:func:`patch` for a transformer, else :func:`standard`) with every
    geometric draw shared by the whole batch.

    For a batch whose images are compared with one another position by position (a caricature
    and its photo, Lucid's recipe): each image is still seen shifted, rotated, rescaled and
    blurred, but all by the same amounts, so cell (x, y) of one image's activation map and of
    the photo's cover the same place of the frame. Pad, jitter and the scales already draw once
    per batch; only the affine is per image in the other sets.
    """
    base = patch(size, patch_px) if patch_px else standard(size)
    return Compose(
        [
            RandomAffine(t.scale, t.degrees, t.translate, t.fill, per_image=False) if isinstance(t, RandomAffine) else t
            for t in base.transforms
        ]
    )


def none() -> Compose:
    return Compose([])


def maco(size: int | None = None, crop: tuple[float, float] = (0.5, 1.0), noise: float = 0.05):
    """MACO's augmentation: a random square crop (a ``crop`` fraction of the side) resized back
    to the render size, then Gaussian noise."""
    return Compose([RandomCrop(crop), Noise(noise)])


class RandomCrop:
    """Per-image random square crop of a ``fractions`` share of the side, resized to the input's
    size (so the network sees parts of the image at a larger scale)."""

    def __init__(self, fractions: tuple[float, float] = (0.5, 1.0)):
        self.fractions = fractions

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        f = _uniform(g, n, *self.fractions)
        cx = (1 - f) * (2 * torch.rand(n, generator=g) - 1)
        cy = (1 - f) * (2 * torch.rand(n, generator=g) - 1)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = f, f, cx, cy
        grid = F.affine_grid(theta.to(x), [n, x.shape[1], h, w], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def __repr__(self) -> str:
        return f"RandomCrop({self.fractions})"


#: name -> factory(size) -> transforms, for ``transforms="..."`` in every recipe and the CLI.
TRANSFORMS: dict[str, Callable[[int | None], Callable]] = {
    "standard": standard,
    "patch": patch,
    "maco": maco,
    "none": lambda size=None: none(),
}


def register(name: str, factory: Callable[[int | None], Callable]) -> None:
    """Make ``factory(size)`` available as ``transforms=name``."""
    TRANSFORMS[name] = factory


def resolve_transforms(transforms: str | Callable | None, size: int, patch_px: int | None = None) -> Callable:
    """A registered name (``"standard"``, ``"patch"``, ``"maco"``: crops + noise, ``"none"``),
    ``"auto"`` (:func:`patch` for a transformer whose patches are ``patch_px`` wide, else
    ``"standard"``), ``None`` or a callable ``(images, generator)``, as the transforms for
    ``size``-px renders."""
    if transforms is None:
        return none()
    if transforms == "auto":
        return patch(size, patch_px) if patch_px else standard(size)
    if isinstance(transforms, str):
        if transforms not in TRANSFORMS:
            raise FeaturevisError(f"unknown transforms {transforms!r}: use {', '.join(map(repr, TRANSFORMS))}")
        return TRANSFORMS[transforms](size)
    if callable(transforms):
        return transforms
    raise FeaturevisError(f"transforms must be a name or a callable, not {type(transforms).__name__}")
