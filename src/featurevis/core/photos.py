"""Where sets of photos come from: a user's folder, or scikit-image's bundled samples.

Training (fast style, generator priors), catalogs (dataset examples) and spectrum estimates all
need "some photos"; they take them from here so a folder is read, and a missing one reported,
the same way everywhere. Nothing is ever downloaded: a sample that would need a download is
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import FeaturevisError
from .images import ImageLike, as_image, fit_size, load_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
#: The colour photos of scikit-image: the default training content.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def named_sample_photos(names: Sequence[str] = SAMPLE_PHOTOS) -> list[tuple[str, torch.Tensor]]:
    """``(name, 1×3×H×W)`` for each of scikit-image's bundled samples in ``names`` that loads offline."""
    try:
        import skimage.data as data
    except ImportError:
        raise FeaturevisError("no --images folder given and scikit-image is not installed for sample photos") from None
    out = []
    for name in names:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            arr = fn()
        except Exception:  # a sample that needs a download is skipped, never fetched
            continue
        t = torch.as_tensor(arr)
        out.append((name, as_image((t.permute(2, 0, 1) if t.dim() == 3 else t).contiguous())))
    return out


def sample_photos() -> list[torch.Tensor]:
    """scikit-image's colour sample photos (offline), as ``1×3×H×W`` tensors in [0, 1]."""
    return [t for _, t in named_sample_photos()]


def folder_files(folder: str | os.PathLike) -> list[Path]:
    """The image files in ``folder`` (not recursive), sorted by name; none is an error."""
    d = Path(folder)
    if not d.is_dir():
        raise FeaturevisError(f"{d}: not a folder of images")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FeaturevisError(f"{d}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return files


def iter_images(files: Sequence[str | os.PathLike]) -> Iterator[torch.Tensor]:
    """Each file loaded only when it is reached: a folder of any size costs one image of memory."""
    for f in files:
        yield load_image(f)


def named_folder(folder: str | os.PathLike) -> list[tuple[str, torch.Tensor]]:
    """``(file name, 1×3×H×W)`` for every image in ``folder`` (not recursive), sorted by name."""
    return [(p.name, load_image(p)) for p in folder_files(folder)]


def load_folder(folder: str | os.PathLike) -> list[torch.Tensor]:
    """Every image in ``folder`` (not recursive), as ``1×3×H×W`` tensors."""
    return [t for _, t in named_folder(folder)]


def training_photos(
    images: str | os.PathLike | Sequence[ImageLike] | None, max_side: int | None = None
) -> list[torch.Tensor]:
    """The photos a trainer learns from: the samples (``None``), a folder, or given images;
    those larger than ``max_side`` are shrunk (aspect kept), which bounds the cost of cropping."""
    if images is None:
        photos = sample_photos()
    elif isinstance(images, (str, os.PathLike)):
        photos = load_folder(images)
    else:
        photos = [as_image(i, "training image") for i in images]
    if not photos:
        raise FeaturevisError("no training images given")
    if max_side is None:
        return photos
    return [fit_size(p, max_side, enlarge=False) for p in photos]


def random_crops(photos: Sequence[torch.Tensor], n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``n`` augmented crops: random photo, random square crop (30-100 % of the short side),
    resized to ``size``, random horizontal flip."""
    out = []
    for _ in range(n):
        p = photos[int(torch.randint(len(photos), (1,), generator=g))]
        h, w = p.shape[-2:]
        side = max(2, int(min(h, w) * (0.3 + 0.7 * float(torch.rand(1, generator=g)))))
        y = int(torch.randint(h - side + 1, (1,), generator=g))
        x = int(torch.randint(w - side + 1, (1,), generator=g))
        c = F.interpolate(p[..., y : y + side, x : x + side], size=(size, size), mode="bilinear", antialias=True)
        if float(torch.rand(1, generator=g)) < 0.5:
            c = c.flip(-1)
        out.append(c)
    return torch.cat(out).clamp(0, 1)
