"""InceptionV1 as in Lucid (TensorFlow's "inception5h" graph), the model of the Distill articles.

Key-for-key compatible with the PyTorch port of that graph that Lucent loads (``inception5h.pth``):
flat names such as ``conv2d0_pre_relu_conv.weight``, ``mixed4a_3x3_pre_relu_conv.bias`` and
``softmax2_pre_activation_matmul.weight`` (1008 outputs: index 0 and 1001-1007 are unused
slots, 1-1000 ImageNet classes in the graph's own order).

Layer names are Lucid's: ``conv2d0``..``conv2d2``, ``mixed3a``..``mixed5b`` (concatenated
block outputs), their branches (``mixed4a_3x3``, ``mixed4a_pool_reduce``, ...), the
pre-ReLU convs (``mixed4a_3x3_pre_relu_conv``) and ``softmax2_pre_activation_matmul`` (logits).

Structure, from the TF graph: TF "SAME" padding (asymmetric ``(2, 3)`` for the stride-2 7x7
stem, ``-inf`` right/bottom padding before the stride-2 3x3 max-pools), local response
normalization (size 9, alpha 1e-4, beta 0.5, k 1) after the first pool and after ``conv2d2``,
plain ReLUs. Input: RGB scaled to [-117, 138] (``x * 255 - 117``). The final pool is global
average (the graph's 7x7 average pool, identical at 224 px, and it also works at other sizes).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .convs import Conv2d

# (in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce) of each mixed block.
BLOCKS = {
    "mixed3a": (192, 64, 96, 128, 16, 32, 32),
    "mixed3b": (256, 128, 128, 192, 32, 96, 64),
    "mixed4a": (480, 192, 96, 204, 16, 48, 64),
    "mixed4b": (508, 160, 112, 224, 24, 64, 64),
    "mixed4c": (512, 128, 128, 256, 24, 64, 64),
    "mixed4d": (512, 112, 144, 288, 32, 64, 64),
    "mixed4e": (528, 256, 160, 320, 32, 128, 128),
    "mixed5a": (832, 256, 160, 320, 48, 128, 128),
    "mixed5b": (832, 384, 192, 384, 48, 128, 128),
}
#: The stride-2 pool that runs before a block (Lucid's names).
POOL_BEFORE = {"mixed4a": "maxpool4", "mixed5a": "maxpool10"}
#: Input preprocessing on [0, 1] RGB, as mean/std: (x - 117/255) / (1/255) = x * 255 - 117.
MEAN, STD = (117 / 255,) * 3, (1 / 255,) * 3


class PadMaxPool(nn.Module):
    """Max-pool after ``-inf`` padding (left, right, top, bottom): TF's "SAME" pooling."""

    def __init__(self, kernel: int, stride: int, pad: tuple[int, int, int, int]):
        super().__init__()
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), self.kernel, self.stride)


class Concat(nn.Module):
    """Channel concatenation as a module, so a mixed block's output has a hookable name."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, 1)


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(9, alpha=9.99999974738e-05, beta=0.5, k=1.0)


class InceptionV1(nn.Module):
    def __init__(self, num_classes: int = 1008):
        super().__init__()
        convs = [("conv2d0", 3, 64, 7), ("conv2d1", 64, 64, 1), ("conv2d2", 64, 192, 3)]
        for name, c in BLOCKS.items():
            cin, c1, c3r, c3, c5r, c5, cp = c
            convs += [
                (f"{name}_1x1", cin, c1, 1),
                (f"{name}_3x3_bottleneck", cin, c3r, 1),
                (f"{name}_5x5_bottleneck", cin, c5r, 1),
                (f"{name}_pool_reduce", cin, cp, 1),
                (f"{name}_3x3", c3r, c3, 3),
                (f"{name}_5x5", c5r, c5, 5),
            ]
        # Weighted layers are registered first, in the checkpoint's order; then the
        # weightless ones (ReLUs, pools, concatenations) under Lucid's names.
        for name, cin, cout, k in convs:
            pad = 0 if name == "conv2d0" else k // 2  # the stem's asymmetric pad is done in forward
            setattr(self, f"{name}_pre_relu_conv", Conv2d(cin, cout, k, stride=2 if k == 7 else 1, padding=pad))
        self.softmax2_pre_activation_matmul = nn.Linear(1024, num_classes)
        for name, *_ in convs:
            setattr(self, name, nn.ReLU())
        self.maxpool0 = PadMaxPool(3, 2, (0, 1, 0, 1))
        self.localresponsenorm0 = _lrn()
        self.localresponsenorm1 = _lrn()
        self.maxpool1 = PadMaxPool(3, 2, (0, 1, 0, 1))
        for name in BLOCKS:
            if name in POOL_BEFORE:
                setattr(self, POOL_BEFORE[name], PadMaxPool(3, 2, (0, 1, 0, 1)))
            setattr(self, f"{name}_pool", PadMaxPool(3, 1, (1, 1, 1, 1)))
            setattr(self, name, Concat())
        self.avgpool0 = nn.AdaptiveAvgPool2d(1)

    def _unit(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, name)(getattr(self, f"{name}_pre_relu_conv")(x))

    def _block(self, name: str, x: torch.Tensor) -> torch.Tensor:
        b1 = self._unit(f"{name}_1x1", x)
        b3 = self._unit(f"{name}_3x3", self._unit(f"{name}_3x3_bottleneck", x))
        b5 = self._unit(f"{name}_5x5", self._unit(f"{name}_5x5_bottleneck", x))
        bp = self._unit(f"{name}_pool_reduce", getattr(self, f"{name}_pool")(x))
        return getattr(self, name)(b1, b3, b5, bp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (the graph's ``softmax2_pre_activation``), not the softmax Lucent returns."""
        x = self._unit("conv2d0", F.pad(x, (2, 3, 2, 3)))
        x = self.localresponsenorm0(self.maxpool0(x))
        x = self._unit("conv2d2", self._unit("conv2d1", x))
        x = self.maxpool1(self.localresponsenorm1(x))
        for name in BLOCKS:
            if name in POOL_BEFORE:
                x = getattr(self, POOL_BEFORE[name])(x)
            x = self._block(name, x)
        return self.softmax2_pre_activation_matmul(self.avgpool0(x).flatten(1))


def from_state_dict(sd: Mapping[str, torch.Tensor]) -> InceptionV1:
    """An InceptionV1 with as many outputs as ``sd``'s classifier (1008 for Lucid's file)."""
    w = sd.get("softmax2_pre_activation_matmul.weight")
    return InceptionV1(num_classes=w.shape[0] if w is not None else 1008)
