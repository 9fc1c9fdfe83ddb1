"""GoogLeNet, key-for-key compatible with torchvision's ``googlenet`` (BN variant).

Layer names are torchvision's: ``conv1``..``conv3``, ``inception3a``..``inception5b`` (the
concatenated block outputs), ``inception4c.branch2`` etc. Like torchvision, the "5x5" branch
uses a 3x3 conv (that is what the pretrained weights were trained with).

The auxiliary heads (``aux1``, ``aux2``) only run in training, so they are optional: a model is
built with them exactly when the checkpoint has their keys (torchvision's file does).

``transform_input=True`` is torchvision's pretrained setting: the network is fed
ImageNet-normalized input and re-normalizes it to ``(x - 0.5) / 0.5`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .convs import Conv2d

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """Conv (no bias), batch norm (eps 1e-3), ReLU: torchvision's unit, with a hookable ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), BasicConv2d(cin, pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) of each inception block.
BLOCKS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, transform_input: bool = False):
        super().__init__()
        self.transform_input = transform_input
        self.register_buffer("_in_scale", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) / 0.5, persistent=False)
        self.register_buffer("_in_shift", (torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) - 0.5) / 0.5, persistent=False)
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(*BLOCKS["inception3a"])
        self.inception3b = Inception(*BLOCKS["inception3b"])
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(*BLOCKS["inception4a"])
        self.inception4b = Inception(*BLOCKS["inception4b"])
        self.inception4c = Inception(*BLOCKS["inception4c"])
        self.inception4d = Inception(*BLOCKS["inception4d"])
        self.inception4e = Inception(*BLOCKS["inception4e"])
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(*BLOCKS["inception5a"])
        self.inception5b = Inception(*BLOCKS["inception5b"])
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits. The auxiliary heads are training-time only and never run here."""
        if self.transform_input:
            x = x * self._in_scale + self._in_shift
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            x = getattr(self, name)(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


def from_state_dict(sd: Mapping[str, torch.Tensor], transform_input: bool = True) -> GoogLeNet:
    """A GoogLeNet shaped for ``sd``: with aux heads iff it has their keys, classes from ``fc``."""
    aux = any(k.startswith(("aux1.", "aux2.")) for k in sd)
    n = sd["fc.weight"].shape[0] if "fc.weight" in sd else 1000
    return GoogLeNet(num_classes=n, aux_logits=aux, transform_input=transform_input)
