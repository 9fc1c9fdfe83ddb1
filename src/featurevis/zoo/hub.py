"""Models named by the library that defines them: ``timm:NAME`` and ``clip:ARCH[:TAG]``.

timm and open_clip are optional extras (``featurevis[timm]``, ``featurevis[clip]``), imported
only when such a name is loaded, so the core never pulls them (nor the torchvision they import).

Weights come, in this order, from a file the user names (``weights=FILE``, a ``.pth``/``.bin``
state dict or a ``.safetensors`` file, in the library's own format); ``weights="random"``, the
library's random initialization, for timing and tests and labelled as such in the model's name;
the Hugging Face hub cache, where both libraries keep what they download
(``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``), looked up without any network access;
other caches the library used before (timm: the torch hub checkpoint folder); a download into the
Hugging Face cache unless ``download=False`` or ``HF_HUB_OFFLINE`` is set, or the hub's host cannot
be reached (one connection, :func:`hub_unreachable`). Failing all that, one line names the hub
repository and file to fetch, where to put it, and ``--weights``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from torch import nn

from ..core.errors import FeaturevisError
from . import weights as checkpoints

#: ``weights=RANDOM`` keeps the library's random initialization (for timing and tests).
RANDOM = "random"

#: name prefix -> (module to import, distribution, featurevis extra, featurevis module)
PREFIXES: dict[str, tuple[str, str, str, str]] = {
    "timm": ("timm", "timm", "timm", "timm_models"),
    "clip": ("open_clip", "open-clip-torch", "clip", "clip_models"),
}


def is_hub_name(name: str) -> bool:
    """``timm:...`` or ``clip:...``."""
    return isinstance(name, str) and name.partition(":")[0] in PREFIXES and ":" in name


def load(name: str, weights: str | os.PathLike | None = None, *, download: bool = True):
    """The :class:`FeatureModel` for a ``timm:``/``clip:`` name (see the module docstring)."""
    prefix, _, rest = name.partition(":")
    if not rest:
        raise FeaturevisError(f"{name!r}: name the model after the prefix, e.g. {_EXAMPLES[prefix]}")
    module = importlib.import_module(f"{__package__}.{PREFIXES[prefix][3]}")
    return module.load(name, weights, download=download)


_EXAMPLES = {"timm": "timm:vit_base_patch16_224", "clip": "clip:ViT-B-32 or clip:ViT-B-32:laion2b_s34b_b79k"}


def require(prefix: str, name: str) -> ModuleType:
    """The library behind ``prefix``, imported now; one line saying how to install it if absent."""
    module, dist, extra, _ = PREFIXES[prefix]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] == module:
            raise FeaturevisError(f"{name} needs {dist}: pip install 'featurevis[{extra}]'") from None
        raise FeaturevisError(f"{name}: importing {module} failed ({e})") from None


def installed(prefix: str) -> str | None:
    """The installed version of the library behind ``prefix`` (without importing it), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PREFIXES[prefix][1])
    except PackageNotFoundError:
        return None


# -- the Hugging Face hub cache --------------------------------------------------------------
def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``XDG_CACHE_HOME/huggingface/hub`` (default ``~/.cache/huggingface/hub``); read at each call,
    not when huggingface_hub was imported, so the variables can change in a running process."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: the hub libraries must not touch the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


#: Seconds one connection to the hub's host may take before it counts as unreachable.
PROBE_TIMEOUT = 3.0
_PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_unreachable() -> str | None:
    """Why the hub's host (``HF_ENDPOINT``, default huggingface.co) cannot be reached now, or
    None when it answers, or when a proxy is set (a direct connection cannot judge the proxy).

    Why: without a network, huggingface_hub retries with back-off before it gives up (24 s for
    a checkpoint and 57 s for a tokenizer on a machine with none); one TCP connection tells at
    once, so the one-line error comes before the wait.
    """
    if any(os.environ.get(v) for v in _PROXIES):
        return None
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as e:
        return f"{host} cannot be reached: {e.strerror or e}"
    return None


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """huggingface_hub, and the libraries built on it, kept off the network for the block:
    files come from the cache or fail at once. huggingface_hub reads ``HF_HUB_OFFLINE`` when it
    is imported, so its module constant is set along with the variable."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as constants
    except ImportError:
        constants = None
    flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = flag
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


@dataclass(frozen=True)
class HubFile:
    """A checkpoint on the Hugging Face hub: a repository and its file names, preferred first
    (the libraries publish ``.safetensors`` beside, or instead of, a pickled ``.bin``)."""

    repo: str
    files: tuple[str, ...]
    revision: str | None = None

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo}"

    def cached(self) -> Path | None:
        """The file if it is in the local hub cache (no network access)."""
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        for f in self.files:
            found = try_to_load_from_cache(self.repo, f, cache_dir=hf_cache_dir(), revision=self.revision)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
        return None

    def fetch(self) -> Path:
        """Download into the hub cache: the first of ``files`` the repository has."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for f in self.files:
            try:
                return Path(hf_hub_download(self.repo, f, revision=self.revision, cache_dir=hf_cache_dir()))
            except LocalEntryNotFoundError:
                raise  # no connection: trying the other names would only repeat the wait
            except EntryNotFoundError:
                continue
        raise FileNotFoundError(f"{self.url} has none of {', '.join(self.files)}")


def resolve_weights(
    what: str,
    weights: str | os.PathLike | None,
    hub: HubFile | None,
    *,
    other_caches: Sequence[Path] = (),
    download: bool = True,
) -> Path | None:
    """The checkpoint file for model ``what``, or None for random weights (see the module doc)."""
    if weights is not None:
        if str(weights) == RANDOM:
            return None
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FeaturevisError(f"weights file not found: {p}")
        return p
    found = (hub.cached() if hub else None) or next((p for p in other_caches if p.is_file()), None)
    if found is not None:
        return found
    if hub is None:
        raise FeaturevisError(
            f"no published weights are known for {what}: pass --weights FILE (or --weights random for untrained ones)"
        )
    why = "not downloading: HF_HUB_OFFLINE is set" if hf_offline() else "not downloading (download=False)"
    if download and not hf_offline():
        unreachable = hub_unreachable()
        if unreachable:
            why = f"not downloading: {unreachable}"
        else:
            print(f"featurevis: downloading {what} weights from {hub.url}", file=sys.stderr)
            try:
                return hub.fetch()
            except Exception as e:  # any failure of the network or the hub ends in the message below
                why = f"download failed: {checkpoints.first_line(e)}"
    alternative = f" (or {hub.files[1]})" if len(hub.files) > 1 else ""
    raise FeaturevisError(
        f"weights for {what} are not here ({why}): fetch {hub.files[0]}{alternative} from {hub.url} into the "
        f"Hugging Face cache {hf_cache_dir()} (`hf download {hub.repo} {hub.files[0]}`), or pass --weights FILE "
        "(--weights random for untrained weights)"
    )


def label(name: str, path: Path | None) -> str:
    """The model's display name: random weights say so wherever the name is shown."""
    return f"{name} (random weights)" if path is None else name


# -- what a module says about its own inputs ----------------------------------------------------
def preprocessing(net: nn.Module) -> dict:
    """``mean``, ``std`` and ``input_size`` for :class:`FeatureModel`, from what the module
    carries: timm's ``pretrained_cfg``, open_clip's ``preprocess_cfg`` (or its older
    ``image_mean``/``image_std``/``image_size``); empty when it carries nothing."""
    out: dict = {}
    cfg = getattr(net, "pretrained_cfg", None)
    if isinstance(cfg, Mapping):
        mean, std, size = cfg.get("mean"), cfg.get("std"), cfg.get("input_size")
    else:
        pp = getattr(net, "preprocess_cfg", None)
        pp = pp if isinstance(pp, Mapping) else {}
        mean = pp.get("mean", getattr(net, "image_mean", None))
        std = pp.get("std", getattr(net, "image_std", None))
        size = pp.get("size", getattr(net, "image_size", None))
    if mean is not None and std is not None and len(mean) == 3 and len(std) == 3:
        out["mean"], out["std"] = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if isinstance(size, int):
        out["input_size"] = size
    elif isinstance(size, Sequence) and size and all(isinstance(v, int) for v in size):
        out["input_size"] = int(size[-2] if len(size) >= 2 else size[0])  # (C,) H, W: the height
    return out


# -- what is here ---------------------------------------------------------------------------
_TIMM_FILES = ("model.safetensors", "pytorch_model.bin")
_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def cached_models() -> list[str]:
    """``timm:``/``clip:`` names whose weights are in the Hugging Face cache (read from its
    folders: ``models--ORG--NAME/snapshots/REV/FILE``), for ``featurevis models``."""
    root = hf_cache_dir()
    found: dict[str, set[str]] = {}
    for folder in sorted(root.glob("models--*--*")):
        repo = folder.name.removeprefix("models--").replace("--", "/", 1)
        files = {f.name for f in folder.glob("snapshots/*/*") if f.is_file()}
        if files:
            found[repo] = files
    names = [
        f"timm:{repo.split('/', 1)[1]}"
        for repo, files in found.items()
        if repo.startswith("timm/") and files & set(_TIMM_FILES)
    ]
    clip_repos = {repo for repo, files in found.items() if files & set(_CLIP_FILES)}
    if clip_repos and installed("clip"):
        from open_clip import pretrained

        for arch, tag in pretrained.list_pretrained():
            if pretrained.get_pretrained_cfg(arch, tag).get("hf_hub", "").rstrip("/") in clip_repos:
                names.append(f"clip:{arch}:{tag}")
    return names
