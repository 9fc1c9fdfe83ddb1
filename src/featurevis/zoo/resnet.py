"""ResNet-50 (v1.5: stride in the 3x3 conv), key-for-key compatible with torchvision's ``resnet50``.

Layer names are torchvision's (``layer3.2`` is block 3 of stage 3, ``layer4`` the last stage).
Each bottleneck has its own ReLU modules, so ``layer3.2.relu`` is the block's output after the
residual sum (torchvision reuses one ReLU three times); ``relu1``/``relu2`` are the inner ones.
They hold no weights, so the state dict is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.residual import scale_gradient
from .convs import Conv2d


class Bottleneck(nn.Module):
    expansion = 4
    #: Share of the gradient the branch passes back (:mod:`~featurevis.core.residual`).
    branch_gradient = 1.0

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.relu2(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(scale_gradient(h, self.branch_gradient) + skip)


class ResNet(nn.Module):
    def __init__(self, depths: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1 = Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        cin = 64
        for i, n in enumerate(depths):
            width = 64 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, width, stride=2 if j == 0 and i > 0 else 1))
                cin = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet50() -> ResNet:
    return ResNet((3, 4, 6, 3))
