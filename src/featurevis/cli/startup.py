"""What a one-shot ``featurevis`` process sets up around torch, so its fixed cost stays small.

Two costs dominated a one-step run (``featurevis render lite0 class:1 --steps 1``), measured on
this project's 2-core machine:

- **Spinning OpenMP threads on a busy machine.** libgomp's worker threads busy-wait a while
  between parallel regions. With other work on the CPU (a second job, a test suite, a browser)
  two spinning threads on two cores wait on each other: under a load average of about 5 a
  1-step render took 7.0 s instead of 0.3 s. With ``OMP_WAIT_POLICY=PASSIVE`` they sleep
  instead; but on an idle machine sleeping costs 30-40 % per step (lite0 224 px: 84 -> 118 ms
  at batch 1, 542 -> 709 ms at batch 8), so :func:`before_torch` chooses it only when the
  other work already keeps half the cores busy (:func:`wait_policy`), and never over a policy
  the user set (``OMP_WAIT_POLICY``, or libgomp's ``GOMP_SPINCOUNT``). libgomp reads it once,
  when torch loads, so this runs before any torch import. "Busy" is what runs *now*
  (:func:`others_running`), not the 1-minute load average: that average lags, so every run of
  a shell loop of renders, started on the load the run before left, got sleeping workers on a
  machine nothing else used (``benchmarks/RESULTS.md``).
- **torch._dynamo.** Every ``torch.optim`` optimizer's methods are wrapped by
  ``torch._disable_dynamo``, which imports ``torch._dynamo`` (1.6-1.9 s) on the first call only
  to mark them as not compilable. A CLI process never compiles, so :func:`after_torch` fills the
  wrapper's own cache (``__dynamo_disable``) with the plain function, the value it would have
  computed for eager use. Should torch rename that cache, nothing breaks: the import just
  happens again.

Only the process's own entry point calls these (``featurevis.cli.main()`` without arguments);
the Python API leaves the interpreter as the user set it up.
"""

from __future__ import annotations

import os
import statistics
import sys
import time


def wait_policy(load: float, cpus: int) -> str | None:
    """``"PASSIVE"`` when other work already keeps at least half of the ``cpus`` busy (``load``:
    tasks that want a CPU besides this one), else ``None``: libgomp's own default, fastest on an
    idle machine."""
    return "PASSIVE" if load >= 0.5 * max(cpus, 1) else None


def others_running(path: str = "/proc/loadavg", reads: int = 5, gap_s: float = 0.002) -> float | None:
    """How many tasks besides this one are running or waiting for a CPU right now: the median of
    a few reads of the kernel's instantaneous count (``/proc/loadavg``'s "running/total" field,
    which counts the reading process too). None where the file is missing or unreadable."""
    counts = []
    for i in range(reads):
        try:
            with open(path) as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < reads:
            time.sleep(gap_s)
    return float(statistics.median(counts))


def before_torch() -> None:
    """Sleeping OpenMP workers on a busy machine, unless the user chose a wait policy (or torch
    is loaded already, when it is too late to choose)."""
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    load = others_running()
    if load is None:  # no readable /proc/loadavg (not Linux): the 1-minute load average, lag and all
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this system
            return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    policy = wait_policy(load, cpus)
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = policy


def after_torch() -> None:
    """Spare a process that never compiles the import of ``torch._dynamo`` by its optimizers."""
    if "torch._dynamo" in sys.modules or "torch.optim" not in sys.modules:
        return
    import torch.optim

    wrapped = [getattr(torch.optim.Optimizer, name, None) for name in _OPTIMIZER_METHODS]
    wrapped += [getattr(sys.modules.get(f"torch.optim.{kind}"), kind, None) for kind in _FUNCTIONAL]
    for fn in wrapped:
        raw = getattr(fn, "__wrapped__", None)
        if callable(raw) and not hasattr(raw, "__dynamo_disable"):
            raw.__dynamo_disable = raw


#: ``torch.optim.Optimizer`` methods decorated with ``torch._disable_dynamo``.
_OPTIMIZER_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")
#: ``torch.optim.<kind>.<kind>``: the functional steps, wrapped by ``_disable_dynamo_if_unsupported``.
_FUNCTIONAL = ("adam", "adamw", "sgd")
