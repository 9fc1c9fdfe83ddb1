"""RGBA images: a parameterization plus a Fourier alpha channel, seen over random backgrounds.

An image the network sees only composited over a *different random* background each step can
rely on nothing but its opaque parts, so the alpha channel marks what actually drives the unit
(Mordvintsev et al. 2018, "Differentiable Image Parameterizations"). A penalty on the mean
opacity (:func:`~featurevis.core.objectives.opacity_penalty`) keeps it from covering everything.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..objectives import ALPHA
from .base import Parameterization
from .fourier import FourierImage


class AlphaImage(Parameterization):
    """``rgb``'s images with an alpha channel of their own.

    While optimized (autograd on) each call composites over fresh random smooth backgrounds, one
    per image; drawn without autograd (final images, snapshots) it composites over white, so the
    result is reproducible. :meth:`rgba` gives the straight (not premultiplied) RGBA images.
    """

    def __init__(self, rgb: Parameterization, *, generator: torch.Generator | None = None):
        super().__init__()
        self.rgb, self.batch, self.size = rgb, rgb.batch, rgb.size
        self.default_lr = rgb.default_lr
        self.alpha = FourierImage(rgb.batch, rgb.size, channels=1, decorrelate=False, generator=generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self._backgrounds = torch.Generator().manual_seed(seed)

    def background(self, like: torch.Tensor) -> torch.Tensor:
        """Random smooth backgrounds: a 4×4 grid of random colours, bilinearly enlarged."""
        b, _, h, w = like.shape
        coarse = torch.rand(b, like.shape[1], 4, 4, generator=self._backgrounds).to(like)
        return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)

    def images_and_extras(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rgb, a = self.rgb(), self.alpha()
        bg = self.background(rgb) if torch.is_grad_enabled() else torch.ones_like(rgb)
        return a * rgb + (1 - a) * bg, {ALPHA: a}

    def forward(self) -> torch.Tensor:
        return self.images_and_extras()[0]

    def rgba(self) -> torch.Tensor:
        """``B×(C+1)×H×W`` in [0, 1]: colour (``C`` channels, 3 for RGB) and opacity."""
        return torch.cat([self.rgb(), self.alpha()], 1)

    def constrain(self) -> None:
        self.rgb.constrain()
