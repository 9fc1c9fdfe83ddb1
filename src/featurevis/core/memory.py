"""Will a request fit in memory? Checked before the work, so a too-large size, batch or photo is
one line naming the limit, not an allocator traceback minutes in or a process the kernel kills.

The budget is the memory available now: on a GPU what ``torch.cuda.mem_get_info`` reports, on
the CPU Linux's ``MemAvailable`` (capped by a cgroup's limit, as in a container).
``FEATUREVIS_MEMORY`` overrides it (``16G``, ``500M``, bytes; ``off`` skips the checks).

A request's need is an estimate, on the generous side of real use, so that only requests which
cannot fit are refused:

- images: ``batch × H × W`` RGB float32 pixels, times the copies a run keeps (the
  parameterization's image, its transformed copy, gradients and the optimizer's two moments);
- a network: its activations per input pixel, measured once per model by one forward pass at
  its own input size (every leaf module's output), times the pixels it sees; a backward pass
  keeps them all (lite0: measured peak 0.7x this sum), a forward without gradients only a few
  at a time (measured 0.16x; counted as a quarter).
"""

from __future__ import annotations

import math
import os
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import FeaturevisError

if TYPE_CHECKING:
    from .model import FeatureModel

#: The environment variable that sets (or, with ``off``, lifts) the memory budget.
ENV = "FEATUREVIS_MEMORY"
#: float32 RGB.
BYTES_PER_PIXEL = 12
#: Copies of each image an optimization keeps at once (image, transformed, gradients, Adam's moments...).
OPTIMIZATION_COPIES = 8
#: Share of the summed activations a forward pass without gradients holds at once.
FORWARD_SHARE = 0.25
#: Side of the probe for modules without an input size of their own (a style network).
PROBE_SIDE = 64

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_per_pixel: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()


def parse_bytes(text: str) -> int | None:
    """``16G``, ``512MiB``, ``2.5g``, ``1000000`` -> bytes; ``off``/``none`` -> None."""
    t = text.strip().lower()
    if t in ("off", "none", "unlimited"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?", t)
    if not m:
        raise FeaturevisError(f"{ENV}={text!r}: give a size like 16G or 500M, or off")
    return int(float(m[1]) * _UNITS[m[2]])


def gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def _cgroup_room() -> int | None:
    """What a cgroup v2 memory limit (a container's) leaves, if there is one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def available(device: torch.device | str | None = None) -> int | None:
    """Bytes free for new work on ``device`` now (``None``: unknown)."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0]
    if dev.type != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return free if room is None else min(free, room)


def budget(device: torch.device | str | None = None) -> int | None:
    """The bytes a request may use: ``$FEATUREVIS_MEMORY`` if set, else what is available."""
    env = os.environ.get(ENV)
    if env:
        return parse_bytes(env)
    return available(device)


def require(need: float, what: str, hint: str, device: torch.device | str | None = None) -> None:
    """Refuse ``what`` in one line when ``need`` bytes exceed the budget; ``hint`` says what to
    lower ("use a smaller --size")."""
    limit = budget(device)
    if limit is None or need <= limit:
        return
    where = "" if torch.device(device or "cpu").type == "cpu" else f" on {device}"
    source = f"the {ENV} limit" if os.environ.get(ENV) else "what is available"
    raise FeaturevisError(
        f"{what} needs about {gib(need)} of memory, more than {source} ({gib(limit)}{where}); "
        f"{hint}, or set {ENV} to a larger size (e.g. {ENV}={math.ceil(need / (1 << 30))}G; off skips this check)"
    )


def image_bytes(pixels: float, copies: float = OPTIMIZATION_COPIES) -> float:
    """Memory of ``copies`` float32 RGB images of ``pixels`` pixels in all (batch included)."""
    return pixels * BYTES_PER_PIXEL * copies


def activation_bytes_per_pixel(model: nn.Module) -> float:
    """Bytes of activations per input pixel (one image, every leaf module's output, float32),
    measured once per model at its own input size (a :class:`FeatureModel`) or 64 px."""
    if model in _per_pixel:
        return _per_pixel[model]
    if hasattr(model, "layers") and hasattr(model, "input_size"):
        side = model.input_size
        infos = model.layers(side)
        names = [i.name for i in infos]
        total = sum(math.prod(i.shape) * i.calls for i in infos if not any(n.startswith(i.name + ".") for n in names))
    else:
        side, total = PROBE_SIDE, 0
        leaves = [m for m in model.modules() if not any(True for _ in m.children())]

        def count(mod: nn.Module, args: object, out: object) -> None:
            nonlocal total
            total += out.numel() if isinstance(out, torch.Tensor) else 0

        hooks = [m.register_forward_hook(count) for m in leaves]
        try:
            dev = next(model.parameters(), torch.zeros(())).device
            with torch.no_grad():
                model(torch.zeros(1, 3, side, side, device=dev))
        finally:
            for h in hooks:
                h.remove()
    _per_pixel[model] = per_px = 4.0 * total / (side * side)
    return per_px


def check_request(
    model: nn.Module | FeatureModel | None,
    batch: int,
    height: int,
    width: int,
    *,
    grad: bool = True,
    copies: float = OPTIMIZATION_COPIES,
    seen: tuple[int, int] | None = None,
    what: str | None = None,
    hint: str = "use a smaller size or batch",
    device: torch.device | str | None = None,
) -> None:
    """Refuse work on ``batch`` images of ``height×width`` that cannot fit: ``copies`` images at
    that size, plus ``model``'s activations for what it sees at once (``seen``: a tile's
    ``(h, w)``; default the whole image), with gradients if ``grad``."""
    if budget(device) is None:
        return
    # the byte counts are for RGB; a 1-channel model's images take a third, a 4-channel one's more
    pixels = batch * height * width * getattr(model, "channels", 3) / 3
    need = image_bytes(pixels, copies)
    what = what or f"{batch} image(s) of {width}x{height} px"
    if model is not None:
        # The images alone first: measuring the network must not run out of memory itself.
        require(need, what, hint, device)
        sh, sw = seen or (height, width)
        share = 1.0 if grad else FORWARD_SHARE
        need += batch * sh * sw * activation_bytes_per_pixel(model) * share
        name = getattr(model, "name", type(model).__name__)
        what = f"{what} through {name}{' with gradients' if grad else ''}"
    require(need, what, hint, device)
