"""MACO (Fel et al. 2023): keep a natural image's Fourier magnitude, optimize only the phase.

Natural photos share a magnitude spectrum; what makes them *this* photo is mostly the phase.
So the image is ``irfft2(magnitude · exp(i·phase))`` with the magnitude fixed to the average
spectrum of real photos and only the phase free: every render has natural-image statistics
by construction, and the optimization cannot pour energy into the high frequencies that make
pixel-space renders look like noise. The magnitude is estimated here from photos the user
gives (scikit-image's sample photos by default) and cached on disk; nothing is downloaded.

MACO also accumulates, over the optimization, how much each pixel's gradient mattered: a
"transparency" map that shows which parts of the render the unit actually responds to.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import FeaturevisError
from ..images import ImageLike, as_image, atomic_write
from .base import Parameterization, decorrelated_to_rgb, rgb_to_decorrelated

#: Random crops per photo used to estimate the spectrum.
SPECTRUM_CROPS = 32


def cache_dir() -> Path:
    """``$FEATUREVIS_CACHE`` or ``$XDG_CACHE_HOME/featurevis`` (default ``~/.cache/featurevis``)."""
    env = os.environ.get("FEATUREVIS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "featurevis"


def estimate_spectrum(images: Sequence[ImageLike], size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Mean Fourier magnitude (``3×H×(W//2+1)``, orthonormal FFT) of random square crops of
    ``images`` resized to ``size``, each crop's mean colour removed, in the decorrelated colour
    basis (luminance and two colour-opponent channels, as :class:`FourierImage` uses)."""
    h, w = (size, size) if isinstance(size, int) else size
    photos = [as_image(i, "spectrum image") for i in images]
    if not photos:
        raise FeaturevisError("no images to estimate a spectrum from")
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(3, h, w // 2 + 1)
    n = 0
    for p in photos:
        ph, pw = p.shape[-2:]
        for _ in range(SPECTRUM_CROPS):
            side = max(8, int(min(ph, pw) * (0.5 + 0.5 * float(torch.rand(1, generator=g)))))
            y = int(torch.randint(ph - side + 1, (1,), generator=g))
            x = int(torch.randint(pw - side + 1, (1,), generator=g))
            crop = p[..., y : y + side, x : x + side]
            crop = F.interpolate(crop, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            crop = rgb_to_decorrelated(crop - crop.mean(dim=(2, 3), keepdim=True))[0]
            total += torch.fft.rfft2(crop, norm="ortho").abs()
            n += 1
    # Smooth across neighbouring frequencies: a few photos leave sharp peaks (JPEG blocks,
    # repeated structure) that would print as a fine grid on every render.
    mean = (total / n)[None]
    padded = torch.cat([mean[..., -1:, :], mean, mean[..., :1, :]], dim=-2)  # fy wraps around
    padded = F.pad(padded, (1, 1, 0, 0), mode="replicate")
    return F.avg_pool2d(padded, 3, stride=1)[0]


def natural_spectrum(size: int | tuple[int, int], images: Sequence[ImageLike] | None = None) -> torch.Tensor:
    """The magnitude spectrum MACO keeps, for ``size``: estimated from ``images`` (default:
    scikit-image's sample photos) and cached in :func:`cache_dir` by size and image content."""
    from ..photos import sample_photos

    h, w = (size, size) if isinstance(size, int) else size
    if images is None:
        try:
            photos = sample_photos()
        except FeaturevisError:
            raise FeaturevisError(
                "MACO estimates its spectrum from photos: install scikit-image for the sample photos "
                "(pip install 'featurevis[samples]') or pass natural_spectrum(size, your_photos)"
            ) from None
    else:
        photos = [as_image(i, "spectrum image") for i in images]
    digest = hashlib.sha1()
    for p in photos:
        digest.update(str(tuple(p.shape)).encode())
        digest.update(p[..., ::7, ::7].contiguous().numpy().tobytes())
    path = cache_dir() / f"maco-spectrum-v2-{h}x{w}-{digest.hexdigest()[:12]}.pt"
    if path.is_file():
        try:
            spec = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(spec, torch.Tensor) and spec.shape == (3, h, w // 2 + 1):
                return spec
        except Exception:  # a damaged cache file is recomputed
            pass
    spec = estimate_spectrum(photos, (h, w))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as tmp:
            torch.save(spec, tmp)
    except OSError:  # an unwritable cache only costs the recomputation next time
        pass
    return spec


def channel_spectrum(spectrum: torch.Tensor, channels: int) -> torch.Tensor:
    """The photos' ``3×H×(W//2+1)`` decorrelated-colour magnitudes for a ``channels``-channel
    model: one channel keeps the luminance magnitude (the decorrelated basis's first
    component), more than three add the luminance magnitude for each further channel (a depth
    or infrared map is assumed to share natural images' 1/f fall-off, not their colour)."""
    if channels <= 3:
        return spectrum[:channels] if channels != 2 else spectrum[:1].expand(2, -1, -1)
    return torch.cat([spectrum, spectrum[:1].expand(channels - 3, -1, -1)])


class MacoImage(Parameterization):
    """Images with a fixed natural magnitude spectrum; the parameters are the phases.

    The spectrum lives in the decorrelated colour basis, so with one phase per channel the
    colours stay natural (``channels``: see :func:`channel_spectrum`). The inverse FFT is
    standardized per image and squashed by a sigmoid (``contrast`` sets how far the
    standardized values reach into [0, 1]). While it is optimized, the absolute gradient
    reaching each pixel is accumulated: :meth:`transparency` returns it normalized.

    Args:
        spectrum: ``3×H×(W//2+1)`` magnitudes (default: :func:`natural_spectrum` of the
            sample photos at ``size``).
    """

    def __init__(
        self,
        batch: int = 1,
        size: int | tuple[int, int] = 224,
        *,
        spectrum: torch.Tensor | None = None,
        contrast: float = 1.5,
        channels: int = 3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size, self.contrast = batch, (h, w), contrast
        spec = natural_spectrum((h, w)) if spectrum is None else spectrum.float()
        if spec.shape != (3, h, w // 2 + 1):
            raise FeaturevisError(f"spectrum has shape {tuple(spec.shape)}; {h}x{w} images need (3, {h}, {w // 2 + 1})")
        self.register_buffer("magnitude", channel_spectrum(spec, channels)[None].clone())
        phase = (2 * torch.rand(batch, channels, h, w // 2 + 1, generator=generator) - 1) * math.pi
        self.phase = torch.nn.Parameter(phase)
        self.register_buffer("accumulated", torch.zeros(batch, 1, h, w))

    def forward(self) -> torch.Tensor:
        h, w = self.size
        coeffs = torch.polar(self.magnitude.expand_as(self.phase), self.phase)
        t = decorrelated_to_rgb(torch.fft.irfft2(coeffs, s=(h, w), norm="ortho"))
        t = (t - t.mean(dim=(1, 2, 3), keepdim=True)) / (t.std(dim=(1, 2, 3), keepdim=True) + 1e-8)
        img = torch.sigmoid(self.contrast * t)
        if img.requires_grad and torch.is_grad_enabled():
            img.register_hook(self._accumulate)
        return img

    def _accumulate(self, grad: torch.Tensor) -> None:
        self.accumulated += grad.detach().abs().sum(1, keepdim=True)

    def transparency(self) -> torch.Tensor:
        """``B×1×H×W`` in [0, 1]: where the objective's gradient went, summed over the run."""
        a = self.accumulated
        a = F.avg_pool2d(a, 5, stride=1, padding=2, count_include_pad=False)
        return a / a.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)

    def composite(self, background: float = 1.0) -> torch.Tensor:
        """The render faded toward ``background`` where the transparency map is low."""
        with torch.no_grad():
            img = self()
        alpha = self.transparency().to(img) ** 0.5
        return alpha * img + (1 - alpha) * background
