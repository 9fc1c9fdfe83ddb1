"""The tests' tiny CNN as a model spec (``tests/catalog_tiny.py:build``) that a subprocess or a Ray
worker can rebuild by itself: same seed, same weights, in every process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

_threads = torch.get_num_threads()
sys.path.insert(0, str(Path(__file__).parent))
from conftest import Tiny  # noqa: E402

torch.set_num_threads(_threads)  # conftest sets 2 for the test process; keep this process's own

import featurevis as fv  # noqa: E402


def build() -> fv.FeatureModel:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Tiny()
    return fv.FeatureModel(net, input_size=32, name="tiny")


def build_crashing_once() -> fv.FeatureModel:
    """:func:`build`, except that the first call in a process other than ``$FV_CRASH_PARENT``
    kills that process (marker file ``$FV_CRASH_MARKER`` absent): a Ray worker dying mid-task."""
    marker = Path(os.environ.get("FV_CRASH_MARKER", "/nonexistent/marker"))
    if os.environ.get("FV_CRASH_PARENT") not in (None, str(os.getpid())) and not marker.exists():
        marker.write_text(f"worker {os.getpid()} crashed here")
        os._exit(1)
    return build()


def build_vit() -> fv.FeatureModel:
    """The tiny ViT of tests/tiny_vit.py, seeded the same way in every process."""
    from tiny_vit import SIZE, TinyViT

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = TinyViT()
    return fv.FeatureModel(net, input_size=SIZE, name="tiny-vit", channels_last=False)
