"""Reading and writing images: tensors ``B×3×H×W`` in [0, 1] on one side, files via Pillow.

Writes are atomic (a temporary file renamed into place) so an interrupted run never leaves a
half-written image, and read errors become one-line ``FeaturevisError`` messages.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FeaturevisError, FeaturevisNote

#: Pillow's decompression-bomb limit, raised to what a 2 CPU / 24 GiB machine still handles.
#: Pillow only warns between this and twice this; :func:`load_image` refuses both.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
#: Memory per pixel while a file is read: decoded 8-bit RGB (twice: the file's mode, then RGB)
#: and two float32 copies (the array, then the tensor's channel-first copy).
LOAD_BYTES_PER_PIXEL = 30


def to_pil(img: torch.Tensor) -> Image.Image:
    """One ``C×H×W`` (or ``1×C×H×W``) tensor in [0, 1] as an 8-bit image: one channel is a
    grayscale (``L``) image, two grey + alpha (``LA``), three RGB, four RGBA (alpha renders);
    any other count is laid out by :func:`channel_tiles` (RGB plus a grey tile per further
    channel), never dropped. Results of 2- and 4-channel *models* are tiled before this."""
    if img.dim() == 4:
        img = img[0]
    if img.shape[0] > 4:
        img = channel_tiles(img)
    arr = (img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    if arr.shape[2] == 1:
        return Image.fromarray(arr[..., 0], "L")
    return Image.fromarray(arr, {2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]])


def channel_tiles(img: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """A ``C×H×W`` image of a model with ``C`` other than 1 or 3 as one picture: the first three
    channels as RGB, then every further channel as a grey tile beside it (white gaps); with two
    channels, each as a grey tile. One or three channels come back as they are.

    Why: a 4-channel (RGB + depth) render written as RGBA would hide the depth in the
    transparency, and writing only RGB would drop it; side by side, every channel is seen."""
    if img.dim() == 4:
        return torch.stack([channel_tiles(i, pad) for i in img])
    c, h, w = img.shape
    if c in (1, 3):
        return img
    first = [img[:3]] if c >= 3 else []
    tiles = first + [img[i : i + 1].expand(3, h, w) for i in range(len(first) and 3, c)]
    out = torch.ones(3, h, len(tiles) * (w + pad) - pad, dtype=img.dtype, device=img.device)
    for i, t in enumerate(tiles):
        out[:, :, i * (w + pad) : i * (w + pad) + w] = t
    return out


def grey(image: torch.Tensor) -> torch.Tensor:
    """RGB images as one-channel luminance (ITU-R BT.601 weights, as Pillow's ``L`` mode)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
    return torch.einsum("c,bchw->bhw", weights, image)[:, None]


def for_channels(image: torch.Tensor, channels: int, what: str = "image") -> torch.Tensor:
    """A ``1×3×H×W`` photo for a model that reads ``channels``: RGB as is, grey for a
    grayscale model (with a note on stderr: the colour is gone), an error for other counts
    (a photo has no depth or infrared channel to make up)."""
    c = image.shape[1]
    if c == channels:
        return image
    if channels == 1 and c == 3:
        warnings.warn(f"{what} converted to grey for a 1-channel model", FeaturevisNote, stacklevel=3)
        return grey(image)
    raise FeaturevisError(
        f"{what} has {c} channel(s) but the model reads {channels}: image files are read as RGB or grey; "
        f"pass a {channels}×H×W tensor in [0, 1] from Python"
    )


def from_pil(im: Image.Image) -> torch.Tensor:
    """A PIL image (any mode, any bit depth) as a ``1×3×H×W`` float tensor in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
        t = torch.from_numpy(np.repeat(arr[..., None], 3, axis=2))
    else:
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        t = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    return t.permute(2, 0, 1)[None].contiguous()


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image file (EXIF orientation applied) as ``1×3×H×W`` in [0, 1]."""
    p = Path(path)
    if not p.exists():
        raise FeaturevisError(f"{p}: no such file")
    if p.is_dir():
        raise FeaturevisError(f"{p}: is a directory, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            _check_pixels(p, *im.size)  # from the header: before decoding a byte of pixels
            im = ImageOps.exif_transpose(im)
            im.load()
    except FeaturevisError:
        raise
    except UnidentifiedImageError:
        raise FeaturevisError(f"{p}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FeaturevisError(f"{p}: image too large (over {MAX_PIXELS:,} pixels); shrink it first") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise FeaturevisError(f"{p}: damaged or truncated image ({_first_line(e)})") from None
    if min(im.size) < 2:
        raise FeaturevisError(f"{p}: image is {im.size[0]}x{im.size[1]}; need at least 2x2 pixels")
    if size is not None:
        wh = (size, size) if isinstance(size, int) else (size[1], size[0])
        im = im.convert("RGB").resize(wh, Image.Resampling.LANCZOS)
    return from_pil(im)


def _check_pixels(p: Path, width: int, height: int) -> None:
    """An image's pixels against Pillow's limit (even where its warning is ignored) and memory."""
    from .memory import BYTES_PER_PIXEL, check_request

    if width * height > MAX_PIXELS:
        raise FeaturevisError(f"{p}: image too large ({width}x{height} is over {MAX_PIXELS:,} pixels); shrink it first")
    copies = LOAD_BYTES_PER_PIXEL / BYTES_PER_PIXEL
    check_request(None, 1, height, width, copies=copies, what=f"reading {p} ({width}x{height})", hint="shrink it first")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


#: What recipes accept as an image: a tensor or a file path.
ImageLike = torch.Tensor | str | os.PathLike


def as_image(image: ImageLike, what: str = "image", channels: int = 3) -> torch.Tensor:
    """A file path or tensor as ``1×C×H×W`` float in [0, 1] for a model reading ``channels``
    (3: RGB; grayscale/RGBA/integer tensors are fixed up, so every recipe accepts the same
    inputs; 1: photos made grey, with a note; others: a tensor with exactly that many
    channels, see :func:`for_channels`)."""
    if isinstance(image, (str, os.PathLike)):
        return for_channels(load_image(image), channels, what)
    t = torch.as_tensor(image)
    if t.dim() == 2:
        t = t[None]
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[0] != 1:
        raise FeaturevisError(f"{what} must be 1×C×H×W, C×H×W or H×W, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.float() / (65535.0 if t.max() > 255 else 255.0)
    c = t.shape[1]
    if c == channels and channels != 3:
        pass  # the model's own channel count: a grey photo for a grey model, RGB + depth, ...
    elif channels != 3:
        t = for_channels(as_image(t, what), channels, what)
    elif c == 1:
        t = t.expand(1, 3, *t.shape[-2:])
    elif c == 4:  # composite on white, like load_image does for files
        t = t[:, :3] * t[:, 3:] + (1 - t[:, 3:])
    elif c != 3:
        raise FeaturevisError(f"{what} has {c} channels; need 1 (gray), 3 (RGB) or 4 (RGBA)")
    if min(t.shape[-2:]) < 2:
        raise FeaturevisError(f"{what} is {t.shape[-1]}x{t.shape[-2]}; need at least 2x2 pixels")
    return t.float().clamp(0, 1).contiguous()


def fit_size(image: torch.Tensor, size: int | None, enlarge: bool = True) -> torch.Tensor:
    """Resize so the longest side is ``size`` (aspect kept; ``None`` keeps the image as is;
    ``enlarge=False`` only ever shrinks)."""
    if size is None:
        return image
    h, w = image.shape[-2:]
    if not enlarge and max(h, w) <= size:
        return image
    s = size / max(h, w)
    hw = (max(2, round(h * s)), max(2, round(w * s)))
    if hw == (h, w):
        return image
    if s > 1:  # an enlarged image is made to be worked on: refuse one the work cannot hold
        from .memory import check_request

        check_request(None, image.shape[0], *hw, what=f"working at {hw[1]}x{hw[0]} px", hint="use a smaller size")
    return F.interpolate(image, size=hw, mode="bilinear", align_corners=False, antialias=s < 1).clamp(0, 1)


def working_photo(
    image: ImageLike, size: int, device: torch.device | str | None = None, channels: int = 3
) -> torch.Tensor:
    """``image`` with its longest side ``size``, rounded to 8 bits: the photo a photo-seeded
    recipe starts from and compares with is then exactly the one a saved PNG of it holds
    (``channels``: the model's, see :func:`as_image`)."""
    photo = fit_size(as_image(image, "photo", channels), size)
    return (torch.round(photo * 255) / 255).to(device)


def make_grid(images: torch.Tensor, ncols: int | None = None, pad: int = 2) -> torch.Tensor:
    """Tile a batch into one ``3×H×W`` image (white gaps), nearly square by default."""
    b, c, h, w = images.shape
    ncols = ncols or math.ceil(math.sqrt(b))
    nrows = math.ceil(b / ncols)
    grid = torch.ones(c, nrows * (h + pad) - pad, ncols * (w + pad) - pad)
    for i in range(b):
        r, q = divmod(i, ncols)
        grid[:, r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[i].detach().cpu()
    return grid


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Why: an interrupted or failed write must never leave a half-written file under the
    final name. The file gets normal permissions (mkstemp's are private).
    """
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise FeaturevisError(f"{p}: cannot write there ({e.strerror or e})") from None
    os.close(fd)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: The names of :func:`atomic_write`'s temporary files: ``.NAME.`` + mkstemp's 8 characters + ``.tmp``.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def is_atomic_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write`'s temporary files, which outlive their
    write only when the process is killed outright (``kill -9``, a power cut) before the rename."""
    return _TEMPORARY.fullmatch(name) is not None


def save_image(img: torch.Tensor, path: str | os.PathLike, **pil_kwargs) -> Path:
    """Write an image tensor (a batch becomes a grid) atomically; the format follows the suffix."""
    p = Path(path)
    if img.dim() == 4:
        img = img[0] if img.shape[0] == 1 else make_grid(img)
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise FeaturevisError(f"{p}: unknown image format {p.suffix!r}; use .png or .jpg")
    with atomic_write(p) as tmp:
        to_pil(img).save(tmp, format=fmt, **pil_kwargs)
    return p


class ShowsImage:
    """``save()``, ``to_pil()`` and inline notebook display for a result holding ``image``.

    Results of every recipe share this, so each one shows and saves the same way.
    """

    image: torch.Tensor

    def shown(self) -> torch.Tensor:
        """The picture to save and display (a recipe with a batch shows a grid)."""
        return self.image

    def save(self, path: str | os.PathLike, **pil_kwargs) -> Path:
        """Write the image atomically; the format follows the suffix."""
        return save_image(channel_tiles(self.shown()), path, **pil_kwargs)

    def to_pil(self) -> Image.Image:
        return to_pil(channel_tiles(self.shown()))

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.to_pil().save(buf, format="PNG")
        return buf.getvalue()


#: :func:`atomic_write` first writes ``.NAME.XXXXXXXX.tmp``: 14 bytes more than ``NAME``.
TEMP_NAME_EXTRA = 14


def _shown(p: Path, limit: int = 60) -> str:
    text = str(p)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


def _exists(p: Path) -> bool:
    """Whether ``p`` exists; ``False`` also where it cannot even be looked up (a name too long,
    a parent that is a file)."""
    try:
        p.stat()
    except (OSError, ValueError):
        return False
    return True


def check_path(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Fail early (before minutes of work) if ``path`` cannot be written: a folder where a file
    goes (or a file where a folder goes), a name longer than the file system allows, a parent
    that is a file, no write permission, a file system like /proc. Creates nothing, so a
    refused run leaves no empty folders behind (the parents are made when the file is written).
    """
    p = Path(path)
    absolute = Path(os.path.abspath(p))
    # The names first: stat() itself fails on a name that is too long.
    nearest = next(a for a in (absolute, *absolute.parents) if _exists(a))
    name_max = _pathconf(nearest, "PC_NAME_MAX", 255)
    new = absolute.relative_to(nearest).parts
    for i, part in enumerate(new):
        room = name_max - (TEMP_NAME_EXTRA if i == len(new) - 1 and not folder else 0)
        if len(os.fsencode(part)) > room:
            raise FeaturevisError(
                f"{_shown(p)}: a name of {len(os.fsencode(part))} bytes is too long for this file system "
                f"(at most {room} here)"
            )
    path_max = _pathconf(nearest, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(absolute))) + TEMP_NAME_EXTRA >= path_max:
        raise FeaturevisError(f"{_shown(p)}: the path is longer than this file system allows ({path_max} bytes)")
    if nearest == absolute:  # it exists: it is replaced (a file) or written into (a folder)
        if folder and not absolute.is_dir():
            raise FeaturevisError(f"{_shown(p)}: exists and is not a folder")
        if not folder and absolute.is_dir():
            raise FeaturevisError(f"{_shown(p)}: is a directory")
        if not folder:
            nearest = absolute.parent
    if not nearest.is_dir():
        raise FeaturevisError(f"{_shown(p)}: cannot write there ({_shown(nearest)} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as e:
        why = e.strerror or e
        raise FeaturevisError(f"{_shown(p)}: cannot write there (no new files in {_shown(nearest)}: {why})") from None
    return p


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before minutes of work) if ``path`` cannot be written as an image."""
    p = Path(path)
    if Image.registered_extensions().get(p.suffix.lower()) is None:
        raise FeaturevisError(f"{_shown(p)}: unknown image format {p.suffix!r}; use .png or .jpg")
    return check_path(p)
