"""The Fourier parameterization (Olah et al. 2017): a 1/f-scaled spectrum in decorrelated colour."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FeaturevisError
from .base import Parameterization, _inverse_unit, _to_unit, decorrelated_to_rgb, rgb_to_decorrelated


class FourierImage(Parameterization):
    """Images whose parameters are Fourier coefficients, scaled by ``1/f^decay_power``.

    The scaling makes every frequency band equally easy to change (a preconditioner for the
    gradient); with ``decorrelate`` the colour channels are ImageNet's principal components.
    ``channels=1`` (no decorrelation) draws a single smooth map, such as an alpha channel.
    """

    def __init__(
        self,
        batch: int = 1,
        size: int | tuple[int, int] = 224,
        *,
        sd: float = 0.01,
        decay_power: float = 1.0,
        decorrelate: bool = True,
        squash: str = "sigmoid",
        channels: int = 3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if decorrelate and channels != 3:
            raise FeaturevisError(f"decorrelated colour needs 3 channels, not {channels}")
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.decorrelate, self.squash = batch, (h, w), decorrelate, squash
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fy * fy + fx * fx)
        scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        # With an orthonormal inverse FFT and Adam, this scale (Lucid's, /4) makes a learning rate
        # of ~0.05 move the image at a useful pace at any size.
        self.register_buffer("scale", (scale / 4)[None, None])
        self.spectrum = nn.Parameter(torch.randn(batch, channels, h, w // 2 + 1, 2, generator=generator) * sd)

    def coefficients(self) -> torch.Tensor:
        """The (real, imaginary) spectrum of every image, before the 1/f scale."""
        return self.spectrum

    def forward(self) -> torch.Tensor:
        h, w = self.size
        coeffs = torch.view_as_complex(self.coefficients()) * self.scale
        t = torch.fft.irfft2(coeffs, s=(h, w), norm="ortho")
        if self.decorrelate:
            t = decorrelated_to_rgb(t)
        return _to_unit(t if self.squash == "sigmoid" else t + 0.5, self.squash)

    @classmethod
    def from_image(cls, image: torch.Tensor, **kwargs) -> FourierImage:
        """The parameterization that draws ``image`` (``B×C×H×W`` in [0, 1]): the start of an
        optimization seeded by a photo (feature accentuation, Hamblin et al. 2024; a caricature
        from the photo), so every step moves the photo in the same whitened basis a render moves.
        ``kwargs`` as for the constructor (``decay_power``, ``decorrelate``, ``squash``).

        Exact up to the sigmoid's clipping at 1/1000 from black and white (under half a grey level).
        """
        b, c, h, w = image.shape
        p = cls(b, (h, w), sd=0.0, channels=c, **kwargs)
        with torch.no_grad():
            t = _inverse_unit(image.float().to(p.scale.device), p.squash) - (0.0 if p.squash == "sigmoid" else 0.5)
            t = rgb_to_decorrelated(t) if p.decorrelate else t
            p.spectrum.copy_(torch.view_as_real(torch.fft.rfft2(t, norm="ortho") / p.scale))
        return p


class AlignedFourierImage(FourierImage):
    """A batch whose spectra are one shared spectrum plus each image's own.

    Interpolation frames (or any batch meant to be seen side by side) then start from and keep
    a common part, so the same feature sits in the same place from frame to frame instead of
    each image finding its own layout (Lucid's ``shared`` parameterization for interpolation).
    """

    def __init__(self, batch: int = 1, size: int | tuple[int, int] = 224, *, sd: float = 0.01, **kwargs):
        generator = kwargs.get("generator")
        super().__init__(batch, size, sd=sd, **kwargs)
        self.shared = nn.Parameter(torch.randn(self.spectrum.shape[1:], generator=generator)[None] * sd)

    def coefficients(self) -> torch.Tensor:
        return self.spectrum + self.shared
