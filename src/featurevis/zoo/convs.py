"""The zoo's convolution module: ``nn.Conv2d`` with a cheaper, exact CPU path for 1x1 kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``, same parameters and state dict. On the CPU, a 1x1, stride-1, unpadded,
    ungrouped convolution of a channels_last map runs as one matrix product over its pixels.

    Why: the NHWC map already is a pixels × channels matrix, so ``F.linear`` needs no copy, and
    it costs less than oneDNN's 1x1 path or the ``_slow_conv2d`` PyTorch picks for small maps.
    A network's forward and backward at batch 1 gets 3-26 % cheaper
    (``benchmarks/conv_rewrites.py``: InceptionV1 3 %, ResNet-50 4 %, GoogLeNet 8 %,
    EfficientNet-Lite0 11-26 % with its other rewrite). The result is the same product, summed
    in another order. ``rewrites = False`` (per module, or on the class) keeps ``nn.Conv2d``'s
    own kernel: the speed benchmarks' floor is the network as published.
    """

    rewrites = True

    def pointwise(self, x: torch.Tensor) -> bool:
        """Whether ``x`` takes the matrix-product path."""
        return (
            self.rewrites
            and self.kernel_size == (1, 1)
            and self.stride == (1, 1)
            and self.padding == (0, 0)
            and self.groups == 1
            and x.device.type == "cpu"
            and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last)
        )

    def pixel_product(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 convolution of ``x`` as a matrix product; only for an ``x`` :meth:`pointwise` accepts."""
        w = self.weight.view(self.weight.shape[0], -1)
        return F.linear(x.permute(0, 2, 3, 1), w, self.bias).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_product(x) if self.pointwise(x) else super().forward(x)
