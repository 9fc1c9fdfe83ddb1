"""Objective and gradient of an image of any size, computed tile by tile.

A network's activations for a large photo do not fit in memory (lite0 on 4000x3000 px needs
tens of GiB for backward), but each tile's do. Objectives here are means over positions, so the
whole image's value is the area-weighted mean of the tiles' values and its gradient is each
tile's gradient weighted the same way: only the tiles' seams differ from one big pass, and
rolling the image by a random offset each step moves those seams so they average out.
"""

from __future__ import annotations

import math

import torch

from .engine import Gradient, activations
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

    The tiles are cut as if the image were rolled by ``shift`` (pixels, wrapping around), and
    each tile's gradient goes back where its pixels came from; no rolled copy of the image is
    made. Returns ``(gradient or None, per-image value on the CPU)``; the objective reads each
    tile as ``"input"``. Peak memory is one tile's forward and backward plus the gradient.
    """
    h, w = image.shape[-2:]
    out = torch.empty_like(image) if grad else None
    total = torch.zeros(image.shape[0], dtype=torch.float32)
    for y0, y1, x0, x1 in tile_boxes(h, w, tile):
        weight = (y1 - y0) * (x1 - x0) / (h * w)
        rows = ((torch.arange(y0, y1) - shift[0]) % h).to(image.device)[:, None]
        cols = ((torch.arange(x0, x1) - shift[1]) % w).to(image.device)
        x = image.detach()[..., rows, cols].requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            acts = activations(model, x, objective.layers - {INPUT})
            acts[INPUT] = x
            values = objective(acts)
            if grad:
                (values.sum() * weight).backward()
                out[..., rows, cols] = x.grad
        total += values.detach().float().cpu() * weight
    return out, total


class TiledGradient(Gradient):
    """:func:`~featurevis.core.engine.optimize` with the gradient computed tile by tile, so
    an image of any size needs the memory of one ``tile``-sized pass (DeepDream).

    With a ``generator``, each gradient cuts the tiles at a random roll of the image (drawn
    from it: DeepDream's jitter), so seams never sit in one place and no pattern locks onto the
    network's stride grid; evaluations are not rolled. The objective reads each tile as
    ``"input"``; a parameterization's extras are not tiled and not passed.
    """

    def __init__(self, tile: int = 512, generator: torch.Generator | None = None):
        self.tile, self.generator = tile, generator

    def __call__(
        self,
        model: FeatureModel,
        objective: Objective,
        x: torch.Tensor,
        given: dict[str, torch.Tensor],
        *,
        backward: bool = True,
    ) -> torch.Tensor:
        shift = (0, 0)
        if backward and (g := self.generator) is not None:
            h, w = x.shape[-2:]
            shift = (int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g)))
        grad, values = tiled_gradient(model, objective, x, tile=self.tile, shift=shift, grad=backward)
        if grad is not None:
            x.backward(grad.neg_())  # the loop minimizes -objective
        return values


@torch.no_grad()
def tiled_value(model: FeatureModel, objective: Objective, image: torch.Tensor, tile: int = 512) -> torch.Tensor:
    """The objective (per image) of an image of any size, without keeping a graph."""
    return tiled_gradient(model, objective, image, tile=tile, grad=False)[1]
