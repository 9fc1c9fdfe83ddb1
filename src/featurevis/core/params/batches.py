"""A network's weights as the parameters, trained on a stream of photos.

Fast style (a transformation network) and generator priors (a code → image network) are trained
through :func:`~featurevis.core.engine.optimize` like any input: each draw applies the network
to a fresh batch of random crops of the training photos, and hands the loss what it needs from
that same batch as named extras, so nothing travels through a side channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..photos import random_crops
from .base import Parameterization


class NetOnPhotoBatches(Parameterization):
    """Base for parameterizations whose every draw is ``net`` applied to new training crops.

    Subclasses implement :meth:`images_and_extras` from :meth:`crops`; ``forward()`` is its
    images. The crops come from ``g``, so a seed fixes the stream (and a resume restores it).
    """

    def __init__(self, net: nn.Module, photos: Sequence[torch.Tensor], batch: int, size: int, g: torch.Generator):
        super().__init__()
        self.net, self.photos, self.g = net, list(photos), g
        self.batch, self.size = batch, (size, size)

    def crops(self) -> torch.Tensor:
        """``batch`` augmented square crops of the training photos, on the network's device."""
        dev = next(self.net.parameters()).device
        return random_crops(self.photos, self.batch, self.size[0], self.g).to(dev)

    def forward(self) -> torch.Tensor:
        return self.images_and_extras()[0]
