"""Shared fixtures: a tiny random CNN for mechanics, the real lite0 where behaviour needs training."""

from __future__ import annotations

import os
import sys

from featurevis.cli import startup

# On a machine other work keeps busy, OpenMP workers that sleep instead of spinning between
# parallel regions (featurevis.cli.startup, as the CLI does): libgomp reads the policy when torch
# loads, so before that import.
startup.before_torch()

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import featurevis as fv  # noqa: E402

# Two intra-op threads on the 2-core machines CI runs on; under pytest-xdist (`-n N`) the cores
# are shared among the workers, and a worker that spins two threads beside another waits on it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 2) // _WORKERS)))


class Tiny(nn.Module):
    """Three conv stages and a linear head: enough structure for hooks and early stopping."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.fc(self.pool(self.conv3(x)).flatten(1))


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No test touches the network or the user's caches: downloads fail as if offline, TORCH_HOME
    and the Hugging Face cache point at empty folders, and HF_HUB_OFFLINE is set."""
    import urllib.error

    from featurevis.zoo import checkpoints

    def no_network(url, out):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(checkpoints, "fetch", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    hf_cache = str(tmp_path_factory.mktemp("hf_hub_cache"))
    monkeypatch.setenv("HF_HUB_CACHE", hf_cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads both when it is imported, which a module-scoped fixture (open_clip,
    # transformers) may have done before this one ran: it then retried the network for ~45 s.
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(hub, "HF_HUB_CACHE", hf_cache)


@pytest.fixture
def one_thread():
    """One intra-op thread for modules of small images: they gain nothing from two, and on a
    shared 2-core machine two threads per process can wait on each other 100x longer."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny() -> fv.FeatureModel:
    torch.manual_seed(0)
    return fv.FeatureModel(Tiny(), input_size=32, labels=[f"class{i}" for i in range(10)], name="tiny")


@pytest.fixture(scope="session")
def lite0() -> fv.FeatureModel:
    return fv.load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos() -> dict[str, torch.Tensor]:
    """scikit-image's sample photos as 1×3×H×W tensors in [0, 1]."""
    data = pytest.importorskip("skimage.data")
    out = {}
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        arr = getattr(data, name)()
        out[name] = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    return out
