"""Image parameterizations: modules with no input that return a batch of RGB images in [0, 1].

What is optimized changes what gradient descent finds. Pixels give high-frequency noise; a
Fourier basis scaled by 1/f with decorrelated colour (Olah et al. 2017) whitens the gradient so
low frequencies and natural colours are as easy to change as fine detail.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import FeaturevisError

# Square root of ImageNet's RGB colour covariance, via SVD (the constant Lucid publishes).
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


def decorrelated_to_rgb(t: torch.Tensor) -> torch.Tensor:
    """Map a ``B×3×H×W`` tensor from the decorrelated colour basis to RGB (still unbounded)."""
    return torch.einsum("ij,bjhw->bihw", COLOR_CORRELATION.to(t), t)


def rgb_to_decorrelated(t: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(COLOR_CORRELATION).to(t), t)


def _to_unit(t: torch.Tensor, squash: str) -> torch.Tensor:
    if squash == "sigmoid":
        return torch.sigmoid(t)
    if squash == "clamp":
        # Clamp with a straight-through gradient, so saturated pixels can still come back.
        return t + (t.clamp(0, 1) - t).detach()
    raise ValueError(f"squash must be 'sigmoid' or 'clamp', not {squash!r}")


def _inverse_unit(x: torch.Tensor, squash: str) -> torch.Tensor:
    if squash == "sigmoid":
        x = x.clamp(1e-3, 1 - 1e-3)
        return torch.log(x / (1 - x))
    return x


class Parameterization(nn.Module):
    """Base: ``forward()`` returns ``B×3×H×W`` images in [0, 1]."""

    batch: int
    size: tuple[int, int]
    #: Whether :meth:`render_at` can draw the same images at another resolution.
    resolution_independent: bool = False
    #: Adam learning rate ``render`` uses unless told otherwise.
    default_lr: float = 0.05

    def render_at(self, size: int | tuple[int, int]) -> torch.Tensor:
        """The images at another resolution; only resolution-independent kinds (``cppn``) can."""
        raise FeaturevisError(f"{type(self).__name__} images exist at one size only; render with param='cppn'")

    def constrain(self) -> None:
        """Called by :func:`~featurevis.render.optimize` after every optimizer step: project
        the parameters back into their allowed set (e.g. clip a generator's code). No-op here."""


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
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.decorrelate, self.squash = batch, (h, w), decorrelate, squash
        if init is not None:
            t = _inverse_unit(init.float().expand(batch, 3, h, w), squash)
            if squash == "clamp":
                t = t - 0.5
            data = rgb_to_decorrelated(t) if decorrelate else t
        else:
            data = torch.randn(batch, 3, h, w, generator=generator) * sd
        self.pixels = nn.Parameter(data.contiguous())

    def forward(self) -> torch.Tensor:
        t = decorrelated_to_rgb(self.pixels) if self.decorrelate else self.pixels
        if self.squash == "clamp" and not self.decorrelate:
            return _to_unit(t, "clamp")
        return _to_unit(t if self.squash == "sigmoid" else t + 0.5, self.squash)


class FourierImage(Parameterization):
    """Images whose parameters are Fourier coefficients, scaled by ``1/f^decay_power``.

    The scaling makes every frequency band equally easy to change (a preconditioner for the
    gradient); with ``decorrelate`` the colour channels are ImageNet's principal components.
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
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.decorrelate, self.squash = batch, (h, w), decorrelate, squash
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = torch.sqrt(fy * fy + fx * fx)
        scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        # With an orthonormal inverse FFT and Adam, this scale (Lucid's, /4) makes a learning rate
        # of ~0.05 move the image at a useful pace at any size.
        self.register_buffer("scale", (scale / 4)[None, None])
        self.spectrum = nn.Parameter(torch.randn(batch, 3, h, w // 2 + 1, 2, generator=generator) * sd)

    def forward(self) -> torch.Tensor:
        h, w = self.size
        coeffs = torch.view_as_complex(self.spectrum) * self.scale
        t = torch.fft.irfft2(coeffs, s=(h, w), norm="ortho")
        if self.decorrelate:
            t = decorrelated_to_rgb(t)
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
        self.register_buffer("photo", photo.detach().float().clone())
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
        d.copy_((self.photo + d).clamp(0, 1) - self.photo)

    def forward(self) -> torch.Tensor:
        return self.photo + self.delta


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
    (natural magnitude spectrum, phase optimized); ``sd`` is the initial noise (the CPPN starts
    grey and ignores ``sd`` and ``decorrelate``)."""
    if kind == "maco":
        from .maco import MacoImage

        return MacoImage(batch, size, generator=generator)
    if kind == "fourier":
        return FourierImage(batch, size, sd=sd, decorrelate=decorrelate, generator=generator)
    if kind == "pixel":
        return PixelImage(batch, size, sd=sd, decorrelate=decorrelate, generator=generator)
    if kind == "cppn":
        from .cppn import CPPNImage  # cppn builds on this module

        return CPPNImage(batch, size, generator=generator)
    raise FeaturevisError(f"unknown parameterization {kind!r}: choose fourier, pixel, cppn or maco")
