"""Objective and gradient of an image of any size, computed tile by tile.

A network's activations for a large photo do not fit in memory (lite0 on 4000x3000 px needs
tens of GiB for backward), but each tile's do. Objectives here are means over positions, so the
whole image's value is the area-weighted mean of the tiles' values and its gradient is each
tile's gradient weighted the same way: only the tiles' seams differ from one big pass, and
rolling the image by a random offset each call moves those seams so they average out.
"""

from __future__ import annotations

import contextlib
import math

import torch

from .model import INPUT, FeatureModel
from .objectives import Objective

Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def tile_boxes(height: int, width: int, tile: int) -> list[Box]:
    """Split ``height×width`` into nearly equal tiles no larger than ``tile`` on a side.

    Equal tiles (rather than full tiles plus a thin remainder) keep every tile's context and
    cost alike.
    """
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    ys = [round(i * height / ny) for i in range(ny + 1)]
    xs = [round(j * width / nx) for j in range(nx + 1)]
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(ny) for j in range(nx)]


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tiled_gradient(
    model: FeatureModel,
    objective: Objective,
    image: torch.Tensor,
    *,
    tile: int = 512,
    shift: tuple[int, int] = (0, 0),
    grad: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The objective of ``image`` (``B×3×H×W``) and its gradient, one tile at a time.

    The image is rolled by ``shift`` (pixels, wrapping around) before it is cut, and the
    gradient rolled back. Returns ``(gradient or None, per-image value)``; peak memory is that
    of one tile's forward and backward plus two image-sized buffers.
    """
    layers = objective.layers - {INPUT}
    rolled = torch.roll(image, shift, dims=(-2, -1)) if any(shift) else image
    h, w = rolled.shape[-2:]
    out = torch.empty_like(rolled) if grad else None
    total = torch.zeros(rolled.shape[0], dtype=torch.float32)
    amp = _autocast(rolled.device)
    for y0, y1, x0, x1 in tile_boxes(h, w, tile):
        weight = (y1 - y0) * (x1 - x0) / (h * w)
        x = rolled[..., y0:y1, x0:x1].detach().contiguous().requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            with amp:
                acts = model(x, layers) if layers else {}
            acts = {k: v.float() for k, v in acts.items()}
            acts[INPUT] = x
            values = objective(acts)
            if grad:
                (values.sum() * weight).backward()
                out[..., y0:y1, x0:x1] = x.grad
        total += values.detach().float().cpu() * weight
    if out is not None and any(shift):
        out = torch.roll(out, (-shift[0], -shift[1]), dims=(-2, -1))
    return out, total


@torch.no_grad()
def tiled_value(model: FeatureModel, objective: Objective, image: torch.Tensor, tile: int = 512) -> torch.Tensor:
    """The objective (per image) of an image of any size, without keeping a graph."""
    return tiled_gradient(model, objective, image, tile=tile, grad=False)[1]
