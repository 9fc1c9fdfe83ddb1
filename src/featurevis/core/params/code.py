"""Generator codes as a parameterization (DGN-AM): the image is ``G(code)``, the code is optimized.

The code's L2 decay and clipping run in :meth:`CodeImage.constrain`, which the engine calls after
every step, so a learned prior needs no loop of its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import FeaturevisError
from ..generators import Generator
from .base import Parameterization


class CodeImage(Parameterization):
    """Images ``G(code)``: the code is the parameter, kept in the generator's range.

    Args:
        generator: a :class:`~featurevis.core.generators.Generator` (code → RGB in [0, 1]).
        batch: number of codes (images).
        init: starting codes (``batch×code_shape``); default noise, clipped into range.
        decay: multiply the code by this after every step (1 = no L2 prior).
        size: resize the generator's images to this side (default: as they come).
    """

    def __init__(
        self,
        generator: Generator,
        batch: int = 1,
        *,
        init: torch.Tensor | None = None,
        decay: float = 0.99,
        size: int | None = None,
        rng: torch.Generator | None = None,
    ):
        super().__init__()
        if not 0 < decay <= 1:
            raise FeaturevisError(f"decay must be in (0, 1], not {decay}")
        self.gen = generator
        self.decay, self.out_size = decay, size
        if init is None:  # noise around the middle of the range (a sixth of it per std)
            low, high = generator.low, generator.high
            bounded = torch.isfinite(low) & torch.isfinite(high)
            centre = torch.where(bounded, (low + high) / 2, torch.where(torch.isfinite(low), low, 0.0))
            noise = torch.randn(batch, *generator.code_shape, generator=rng)
            init = centre + noise * generator.code_range / 6
        init = init.reshape(-1, *generator.code_shape).float()
        if len(init) == 1 and batch > 1:
            init = init.expand(batch, *generator.code_shape)
        self.batch = len(init)
        self.code = torch.nn.Parameter(self._clip(init.clone()))
        with torch.no_grad():
            side = self().shape[-1]
        self.size = (side, side)

    def _clip(self, code: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(code, self.gen.high.to(code)), self.gen.low.to(code))

    def forward(self) -> torch.Tensor:
        img = self.gen(self.code)
        if self.out_size is not None and img.shape[-1] != self.out_size:
            img = F.interpolate(img, size=(self.out_size, self.out_size), mode="bilinear", antialias=True)
        return img

    @torch.no_grad()
    def constrain(self) -> None:
        self.code.mul_(self.decay)
        self.code.copy_(self._clip(self.code))
