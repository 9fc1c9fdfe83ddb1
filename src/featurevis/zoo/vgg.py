"""VGG-16 and VGG-19 (no batch norm), key-for-key compatible with torchvision's ``vgg16``/``vgg19``.

Layer names are torchvision's ``features.N``; :func:`featurevis.core.layers.conv_names` maps the paper's names
(``conv4_2``: block 4, conv 2) to the ``features.N`` ReLU that follows that conv, which is
what style transfer (Gatys et al.) reads.
"""

from __future__ import annotations

import torch
from torch import nn

#: Convs per block (each block ends in a 2x2 max-pool).
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


class VGG(nn.Module):
    def __init__(self, blocks: tuple[int, ...] = BLOCKS["vgg16"], num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for n, width in zip(blocks, WIDTHS, strict=True):
            for _ in range(n):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
                cin = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 49, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg16() -> VGG:
    return VGG(BLOCKS["vgg16"])


def vgg19() -> VGG:
    return VGG(BLOCKS["vgg19"])
