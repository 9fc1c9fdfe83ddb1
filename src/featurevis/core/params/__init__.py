"""Image parameterizations: what the engine optimizes instead of (or on the way to) pixels.

Kinds are registered by name, so the engine, the recipes and the CLI pick one with a string
(``make_param("maco", ...)``) without importing the module that defines it, and a new kind
is one :func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import FeaturevisError
from .alpha import AlphaImage
from .base import COLOR_CORRELATION, Parameterization, decorrelated_to_rgb, rgb_to_decorrelated
from .batches import NetOnPhotoBatches
from .code import CodeImage
from .cppn import CPPNGenome, CPPNImage
from .fourier import AlignedFourierImage, FourierImage
from .maco import MacoImage, natural_spectrum
from .pixel import PerturbedImage, PixelImage
from .reference import WithReference

#: name -> factory(batch, size, *, sd, decorrelate, generator) -> Parameterization
PARAMETERIZATIONS: dict[str, Callable[..., Parameterization]] = {}


def register(name: str, factory: Callable[..., Parameterization]) -> None:
    """Make ``factory(batch, size, *, sd, decorrelate, generator)`` available as ``param=name``."""
    PARAMETERIZATIONS[name] = factory


register(
    "fourier",
    lambda batch, size, *, sd, decorrelate, generator: FourierImage(
        batch, size, sd=sd, decorrelate=decorrelate, generator=generator
    ),
)
register(
    "pixel",
    lambda batch, size, *, sd, decorrelate, generator: PixelImage(
        batch, size, sd=sd, decorrelate=decorrelate, generator=generator
    ),
)
# A CPPN starts grey and a MACO image has a fixed spectrum: neither takes ``sd`` or ``decorrelate``.
register("cppn", lambda batch, size, *, sd, decorrelate, generator: CPPNImage(batch, size, generator=generator))
register("maco", lambda batch, size, *, sd, decorrelate, generator: MacoImage(batch, size, generator=generator))


def make_param(
    kind: str,
    batch: int,
    size: int | tuple[int, int],
    *,
    sd: float = 0.01,
    decorrelate: bool = True,
    generator: torch.Generator | None = None,
) -> Parameterization:
    """A parameterization by name: ``fourier`` (default), ``pixel``, ``cppn`` or ``maco``
    (natural magnitude spectrum, phase optimized); ``sd`` is the initial noise."""
    if kind not in PARAMETERIZATIONS:
        raise FeaturevisError(f"unknown parameterization {kind!r}: choose {', '.join(PARAMETERIZATIONS)}")
    return PARAMETERIZATIONS[kind](batch, size, sd=sd, decorrelate=decorrelate, generator=generator)


__all__ = [
    "COLOR_CORRELATION",
    "PARAMETERIZATIONS",
    "AlignedFourierImage",
    "AlphaImage",
    "CPPNGenome",
    "CPPNImage",
    "CodeImage",
    "FourierImage",
    "MacoImage",
    "NetOnPhotoBatches",
    "Parameterization",
    "PerturbedImage",
    "PixelImage",
    "WithReference",
    "decorrelated_to_rgb",
    "make_param",
    "natural_spectrum",
    "register",
    "rgb_to_decorrelated",
]
