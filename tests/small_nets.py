"""Small real networks for tests and benchmarks: CNNs fitted in seconds to procedural 32-px images.

No CIFAR weights are available offline, so the small-input tests train their own network on a
task with structure to find: five shape classes (disk, plus, ring, stripes, checkerboard)
drawn with random colours, position, size and rotation, so that colour alone
says nothing and a render must draw the *shape* for another network to recognize it. The same
generator makes grayscale images (one channel) and RGB + a depth-like fourth channel (the shape
raised above a tilted background plane), for the N-channel tests.

``train(channels=, seed=, width=, steps=)`` returns a :class:`featurevis.FeatureModel`; two
seeds give two independently trained networks, one to render on and one to judge the render.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import featurevis as fv
from featurevis.core import transforms as T

CLASSES = ["disk", "plus", "ring", "stripes", "checkerboard"]
SIZE = 32


def _masks(labels: torch.Tensor, g: torch.Generator, size: int) -> torch.Tensor:
    """``B×H×W`` soft masks in [0, 1] of each label's shape, randomly placed, sized and turned."""
    n = len(labels)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    cx, cy = (torch.rand(2, n, generator=g) - 0.5) * 0.5
    r = 0.45 + 0.3 * torch.rand(n, generator=g)
    a = torch.rand(n, generator=g) * 2 * math.pi
    x, y = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    cos, sin = torch.cos(a)[:, None, None], torch.sin(a)[:, None, None]
    u, v = cos * x + sin * y, -sin * x + cos * y
    r = r[:, None, None]
    sharp = size / 2  # about one pixel of soft edge

    def inside(d: torch.Tensor) -> torch.Tensor:  # d < 0 inside
        return torch.sigmoid(-d * sharp)

    dist = torch.sqrt(u * u + v * v)
    period = (0.25 + 0.15 * torch.rand(n, generator=g))[:, None, None]
    shapes = [
        inside(dist - r),
        inside(
            torch.minimum(
                torch.maximum(u.abs() - 0.28 * r, v.abs() - r), torch.maximum(v.abs() - 0.28 * r, u.abs() - r)
            )
        ),
        inside((dist - 0.78 * r).abs() - 0.22 * r),
        torch.sigmoid(torch.sin(2 * math.pi * u / period) * 4),
        torch.sigmoid(torch.sin(math.pi * u / period) * torch.sin(math.pi * v / period) * 8),
    ]
    stack = torch.stack(shapes, 1)  # B×classes×H×W
    return stack[torch.arange(n), labels]


def make_images(n: int, channels: int = 3, seed: int = 0, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled images ``n×channels×size×size`` in [0, 1] (1: grey; 4: RGB + depth)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(CLASSES), (n,), generator=g)
    mask = _masks(labels, g, size)[:, None]
    fg = torch.rand(n, 3, 1, 1, generator=g)
    bg = (fg + 0.3 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)) % 1.0
    rgb = mask * fg + (1 - mask) * bg
    if channels == 1:
        rgb = rgb.mean(1, keepdim=True)
        # grey foreground and background may coincide: push them apart by luminance
        lo, hi = rgb.amin((2, 3), keepdim=True), rgb.amax((2, 3), keepdim=True)
        rgb = 0.15 + 0.7 * (rgb - lo) / (hi - lo).clamp_min(1e-3)
        rgb = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, rgb, 1 - rgb)
    images = [rgb]
    if channels == 4:
        ys = torch.linspace(-1, 1, size)[None, None, :, None]
        xs = torch.linspace(-1, 1, size)[None, None, None, :]
        tilt = (torch.rand(n, 2, 1, 1, generator=g) - 0.5) * 0.4
        plane = 0.3 + tilt[:, :1] * xs + tilt[:, 1:] * ys
        images.append(plane + 0.4 * mask)
    elif channels not in (1, 3):
        raise ValueError(f"channels must be 1, 3 or 4, not {channels}")
    x = torch.cat(images, 1)
    x = x + 0.04 * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1), labels


class SmallCNN(nn.Module):
    """A CIFAR-size classifier: four 3x3 conv stages (two strided), then a 4x4 pooled map read by
    a linear head. Like the CIFAR VGGs of lucent#10 (global pooling replaced by a linear layer),
    it knows *where* things are, so renders must hold their layout still to score."""

    def __init__(self, channels: int = 3, width: int = 8, classes: int = len(CLASSES), pool: int = 4):
        super().__init__()
        w = width
        self.conv1 = nn.Sequential(nn.Conv2d(channels, w, 3, padding=1), nn.BatchNorm2d(w))
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w))
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.BatchNorm2d(4 * w))
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w))
        self.relu4 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(pool)  # 1: global pooling, position-blind (a different judge)
        self.fc = nn.Linear(4 * w * pool * pool, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        return self.fc(self.pool(x).flatten(1))


def _normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (0.5,) * channels, (0.25,) * channels


def train(
    channels: int = 3,
    seed: int = 0,
    width: int = 8,
    steps: int = 200,
    batch: int = 32,
    lr: float = 6e-3,
    pool: int = 4,
) -> fv.FeatureModel:
    """A :class:`SmallCNN` fitted to fresh procedural batches (no epoch to overfit), then wrapped
    with its normalization. Seconds on one thread at the default size."""
    torch.manual_seed(seed)
    net = SmallCNN(channels, width, pool=pool)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in _normalization(channels))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for step in range(steps):
        x, y = make_images(batch, channels, seed=seed * 100_003 + step)
        loss = F.cross_entropy(net((x - mean) / std), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    m, s = _normalization(channels)
    name = f"small{channels}ch-w{width}-p{pool}-s{seed}"
    return fv.FeatureModel(net.eval(), mean=m, std=s, input_size=SIZE, labels=CLASSES, name=name)


def unscaled_transforms(size: int, pad_scale: bool = False) -> T.Compose:
    """The standard set as tuned for 224 px, applied at ``size`` without scaling: 16-px side
    quantization, and 224-px padding and jitter unless ``pad_scale`` (what featurevis did
    before small inputs were scaled). The "before" of the small-model comparisons."""
    k = size / T.REFERENCE_SIZE if pad_scale else 1.0
    return T.Compose(
        [
            T.Pad(round(12 * k)),
            T.Jitter(round(8 * k)),
            T.RandomAffine(scale=(0.8, 1.2), degrees=15.0, translate=0.03),
            T.RandomResolution((0.4, 1.0), p=0.5, quantum=T.QUANTUM),
            T.RandomScale((0.7, 1.2), quantum=T.QUANTUM),
            T.Noise(0.03),
        ]
    )


def accuracy(model: fv.FeatureModel, n: int = 400, seed: int = 99) -> float:
    """Top-1 accuracy on fresh images."""
    x, y = make_images(n, model.channels, seed=seed)
    return (model.predict(x).argmax(1) == y).float().mean().item()


def factory() -> nn.Module:
    """A module for ``-m tests/small_nets.py:factory`` specs: a 1-channel SmallCNN (untrained)."""
    torch.manual_seed(0)
    return SmallCNN(1)
