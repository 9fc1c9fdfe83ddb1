"""Heat maps drawn over photos: one colour ramp, one scaling, one overlay for every explanation.

Saliency (input gradients) and attribution (pixels, layers and channels that drive an objective)
both end in "an ``H×W`` map of how much each place matters, shown over the photo"; drawing it
the same way everywhere means two pictures of the same photo can be compared by eye.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# A perceptual dark-to-bright colour ramp (black, purple, orange, pale yellow) for heat maps.
_RAMP = torch.tensor([[0.0, 0.0, 0.02], [0.33, 0.06, 0.43], [0.73, 0.21, 0.33], [0.98, 0.55, 0.04], [0.99, 1.0, 0.64]])


def colorize(heat: torch.Tensor) -> torch.Tensor:
    """An ``H×W`` map in [0, 1] as a ``1×3×H×W`` colour image."""
    x = heat.clamp(0, 1) * (len(_RAMP) - 1)
    i = x.floor().long().clamp(max=len(_RAMP) - 2)
    f = (x - i)[..., None]
    rgb = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    return rgb.permute(2, 0, 1)[None]


def unit_scale(t: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Scale a non-negative map so its ``q`` quantile is 1 (a few hot pixels don't wash it out)."""
    hi = torch.quantile(t.flatten().float(), q).clamp_min(1e-12)
    return (t / hi).clamp(0, 1)


def signed_image(g: torch.Tensor) -> torch.Tensor:
    """A signed ``1×3×H×W`` gradient as an image: grey is zero, colours show the direction."""
    return (0.5 + 0.5 * g / torch.quantile(g.abs().flatten(), 0.99).clamp_min(1e-12)).clamp(0, 1)


def upsample(heat: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """An ``h×w`` map (a layer's grid) bilinearly resized to the photo's ``H×W``."""
    if tuple(heat.shape[-2:]) == tuple(hw):
        return heat
    return F.interpolate(heat[None, None].float(), size=tuple(hw), mode="bilinear", align_corners=False)[0, 0]


def overlay(photo: torch.Tensor, heat: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """A non-negative ``heat`` map (any scale; resized to the photo) in colour over a dimmed grey
    copy of the ``1×3×H×W`` ``photo``."""
    grey = photo.mean(1, keepdim=True).expand_as(photo)
    heat = upsample(heat, tuple(photo.shape[-2:]))
    return ((1 - alpha) * grey + alpha * colorize(unit_scale(heat))).clamp(0, 1)
