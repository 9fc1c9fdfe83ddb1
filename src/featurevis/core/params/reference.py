"""Images optimized side by side with fixed reference images, in one batch.

An objective that compares an image's activations with a photo's at the same positions needs
the photo to go through the very same random transforms as the image; putting the photo in the
batch does that (Lucid's caricature recipe stacks the image and the photo the same way), and
costs one forward pass for both.
"""

from __future__ import annotations

import torch

from .base import Parameterization


class WithReference(Parameterization):
    """``param``'s images followed by the fixed ``reference`` images (``R×3×H×W``, same size).

    Only ``param`` is optimized; the references are a buffer, so the engine never snapshots
    them. Objectives find the references at batch indices ``param.batch ..``.
    """

    def __init__(self, param: Parameterization, reference: torch.Tensor):
        super().__init__()
        if tuple(reference.shape[-2:]) != tuple(param.size):
            raise ValueError(f"reference is {tuple(reference.shape[-2:])}, the images {tuple(param.size)}")
        self.param, self.size = param, tuple(param.size)
        self.batch = param.batch + reference.shape[0]
        self.default_lr = param.default_lr
        self.register_buffer("reference", reference.detach().float())

    def forward(self) -> torch.Tensor:
        images = self.param()
        return torch.cat([images, self.reference.to(images)])

    def constrain(self) -> None:
        self.param.constrain()
