"""Pixel parameterizations: one free value per pixel, or a photo plus a bounded perturbation."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FeaturevisError
from .base import Parameterization, _inverse_unit, _to_unit, decorrelated_to_rgb, rgb_to_decorrelated


class PixelImage(Parameterization):
    """One free parameter per pixel and channel (optionally in the decorrelated colour basis)."""

    def __init__(
        self,
        batch: int = 1,
        size: int | tuple[int, int] = 224,
        *,
        sd: float = 0.01,
        decorrelate: bool = False,
        squash: str = "sigmoid",
        init: torch.Tensor | None = None,
        channels: int = 3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.decorrelate, self.squash = batch, (h, w), decorrelate, squash
        if init is not None:
            t = _inverse_unit(init.float().expand(batch, channels, h, w), squash)
            if squash == "clamp":
                t = t - 0.5
            data = rgb_to_decorrelated(t) if decorrelate else t
        else:
            data = torch.randn(batch, channels, h, w, generator=generator) * sd
        self.pixels = nn.Parameter(data.contiguous())

    def forward(self) -> torch.Tensor:
        t = decorrelated_to_rgb(self.pixels) if self.decorrelate else self.pixels
        # Clamped pixels are stored centred on 0 (like the sigmoid's logits), so both start grey.
        return _to_unit(t if self.squash == "sigmoid" else t + 0.5, self.squash)


class PerturbedImage(Parameterization):
    """A fixed photo plus a free perturbation ``delta`` kept inside an ``eps`` ball.

    ``constrain()`` (called after each optimizer step) puts ``delta`` back in the L-inf or L2 ball
    and keeps ``photo + delta`` in [0, 1], so every image the model sees is a valid attack.
    """

    def __init__(self, photo: torch.Tensor, eps: float, norm: str = "linf", *, init: torch.Tensor | None = None):
        super().__init__()
        if norm not in ("linf", "l2"):
            raise FeaturevisError(f"unknown norm {norm!r}: use linf or l2")
        self.batch, self.size = photo.shape[0], tuple(photo.shape[-2:])
        self.eps, self.norm = float(eps), norm
        self.register_buffer("photo", photo.detach().float())  # never changed, so not copied (12 MP dreams)
        self.delta = nn.Parameter(torch.zeros_like(self.photo) if init is None else init.detach().float().clone())
        with torch.no_grad():
            self.constrain()

    @torch.no_grad()
    def constrain(self) -> None:
        d = self.delta
        if self.norm == "linf":
            d.clamp_(-self.eps, self.eps)
        else:
            n = d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            d.mul_((self.eps / n).clamp(max=1.0))
        d.add_(self.photo).clamp_(0, 1).sub_(self.photo)  # in place: a 12 MP dream has no memory to spare

    def forward(self) -> torch.Tensor:
        return self.photo + self.delta
