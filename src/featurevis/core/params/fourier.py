"""The Fourier parameterization (Olah et al. 2017): a 1/f-scaled spectrum in decorrelated colour."""

from __future__ import annotations

import torch
from torch import nn

from ..transforms import REFERENCE_SIZE, SMALL_SIDE
from .base import Parameterization, _inverse_unit, _to_unit, decorrelated_to_rgb, rgb_to_decorrelated


def _frequencies(h: int, w: int, full: bool = False) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = (torch.fft.fftfreq(w) if full else torch.fft.rfftfreq(w))[None, :]
    return torch.sqrt(fy * fy + fx * fx)


def _raw_scale(h: int, w: int, decay_power: float, full: bool = False) -> torch.Tensor:
    return 1.0 / _frequencies(h, w, full).clamp_min(1.0 / max(h, w)) ** decay_power


def spectrum_scale(h: int, w: int, decay_power: float = 1.0, reference: int | None = REFERENCE_SIZE) -> torch.Tensor:
    """The ``H×(W//2+1)`` factor each Fourier coefficient is multiplied by: ``1/f^decay_power``
    (``f`` in cycles per pixel, clamped at the lowest frequency); for a small-input image
    (sides under :data:`~featurevis.core.transforms.SMALL_SIDE`) rescaled so that its root
    mean square, hence how far a unit step moves a pixel, is what it is at ``reference`` px.

    Why: the raw 1/f sum grows with the number of frequencies (like ``sqrt(log N)``), so the
    same coefficients and Adam rate gave a 32-px image a fifth less contrast per step than a
    224-px one. ``reference=None`` (and any image of 64 px or more) keeps the raw scale (Lucid's),
    which the learning rates and results of the other recipes were tuned with."""
    scale = _raw_scale(h, w, decay_power)
    if reference is None or max(h, w) >= SMALL_SIDE:
        return scale
    rms = _raw_scale(h, w, decay_power, full=True).square().mean().sqrt()
    ref = _raw_scale(reference, reference, decay_power, full=True).square().mean().sqrt()
    return scale * (ref / rms)


class FourierImage(Parameterization):
    """Images whose parameters are Fourier coefficients, scaled by ``1/f^decay_power``.

    The scaling makes every frequency band equally easy to change (a preconditioner for the
    gradient); with ``decorrelate`` the colour channels are ImageNet's principal components.
    ``channels=1`` draws a single smooth map (a grayscale image, an alpha channel); with 4 or
    more, the first three are decorrelated colour and the rest independent maps (see
    :func:`~.base.decorrelated_to_rgb`).

    The 1/f scale is in cycles per pixel, as Lucid's; below 64 px (small-input, CIFAR-size
    networks) it is normalized so that one unit of coefficient moves a pixel as far as it does
    at 224 px: the raw sum over a 32-px image's few frequencies is a fifth smaller, so the same
    Adam step drew fainter images (``reference``: see :func:`spectrum_scale`;
    ``benchmarks/small_models.py``).
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
        reference: int | None = REFERENCE_SIZE,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.decorrelate, self.squash = batch, (h, w), decorrelate, squash
        scale = spectrum_scale(h, w, decay_power, reference)
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
