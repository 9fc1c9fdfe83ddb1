"""What a one-shot ``featurevis`` process sets up around torch, so its fixed cost stays small.

Two costs dominated a one-step run (``featurevis render lite0 class:1 --steps 1``), measured on
this project's 2-core machine:

- **Spinning OpenMP threads.** libgomp's worker threads busy-wait between parallel regions by
  default. With another process on the CPU (a second job, a test suite, a browser) two spinning
  threads on two cores wait on each other: a 1-step render took 7.0 s instead of 0.3 s. With
  ``OMP_WAIT_POLICY=PASSIVE`` they sleep instead. libgomp reads it once, when torch loads, so
  :func:`before_torch` sets it (unless the user chose a policy) before any import of torch.
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
import sys


def before_torch() -> None:
    """Sleeping OpenMP workers, unless the user chose a wait policy (or torch is loaded)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
