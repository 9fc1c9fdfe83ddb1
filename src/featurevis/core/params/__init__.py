"""Image parameterizations: what the engine optimizes instead of (or on the way to) pixels.

Kinds are registered by name, so the engine, the recipes and the CLI pick one with a string
(``make_param("maco", ...)``) without importing the module that defines it, and a new kind
is one :func:`register` call.
"""

from __future__ import annotations

import inspect
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
    """Make ``factory(batch, size, *, sd, decorrelate, generator[, channels])`` available as
    ``param=name``; a factory that takes ``channels`` also serves grayscale and N-channel models."""
    PARAMETERIZATIONS[name] = factory


register(
    "fourier",
    lambda batch, size, *, sd, decorrelate, generator, channels=3: FourierImage(
        batch, size, sd=sd, decorrelate=decorrelate, channels=channels, generator=generator
    ),
)
register(
    "pixel",
    lambda batch, size, *, sd, decorrelate, generator, channels=3: PixelImage(
        batch, size, sd=sd, decorrelate=decorrelate, channels=channels, generator=generator
    ),
)
# A CPPN starts grey and a MACO image has a fixed spectrum: neither takes ``sd`` or ``decorrelate``.
register(
    "cppn",
    lambda batch, size, *, sd, decorrelate, generator, channels=3: CPPNImage(
        batch, size, channels=channels, generator=generator
    ),
)
register(
    "maco",
    lambda batch, size, *, sd, decorrelate, generator, channels=3: MacoImage(
        batch, size, channels=channels, generator=generator
    ),
)


def _takes_channels(factory: Callable[..., Parameterization]) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "channels" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def make_param(
    kind: str,
    batch: int,
    size: int | tuple[int, int],
    *,
    sd: float = 0.01,
    decorrelate: bool = True,
    generator: torch.Generator | None = None,
    channels: int = 3,
) -> Parameterization:
    """A parameterization by name: ``fourier`` (default), ``pixel``, ``cppn`` or ``maco``
    (natural magnitude spectrum, phase optimized); ``sd`` is the initial noise; ``channels``
    the model's input channels (a factory registered without a ``channels`` argument draws RGB
    only and is refused for other models)."""
    if kind not in PARAMETERIZATIONS:
        raise FeaturevisError(f"unknown parameterization {kind!r}: choose {', '.join(PARAMETERIZATIONS)}")
    factory = PARAMETERIZATIONS[kind]
    if channels == 3:
        return factory(batch, size, sd=sd, decorrelate=decorrelate, generator=generator)
    if not _takes_channels(factory):
        raise FeaturevisError(f"parameterization {kind!r} draws RGB images only; this model reads {channels} channels")
    return factory(batch, size, sd=sd, decorrelate=decorrelate, generator=generator, channels=channels)


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
