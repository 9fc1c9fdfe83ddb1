"""Neuron groups and the activation grid: what a network sees in one photo, position by position.

Olah et al. 2018, "The Building Blocks of Interpretability":

- **Neuron groups.** A layer's activations over a photo (every position a sample) are factored
  by non-negative matrix factorization into a few groups of neurons that fire together
  (:func:`~featurevis.core.factorize.nmf`, scikit-learn's NMF). Each group has a spatial map
  (its NMF weight at each position: *where* in the photo it fires) and a direction in channel
  space, drawn by feature visualization (*what* it detects). Single channels are too many to
  read; a handful of groups that reconstruct most of the activations are a summary a person
  can take in. The panel is Lucid's building-blocks picture: the photo, each group's map in
  its own colour, each group's visualization framed in that colour.
- **Activation grid.** Every cell of the photo's activation map is a vector; rendering each as
  a direction shows what the network "sees" at that place of the photo.

Both render all their directions in batched runs through
:func:`~featurevis.core.visualize.visualize_directions` (cosine-weighted direction objectives,
as Lucid renders directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.engine import activations, resolve_device
from ..core.errors import FeaturevisError
from ..core.factorize import nmf
from ..core.images import ImageLike, as_image, make_grid
from ..core.model import FeatureModel
from ..core.results import Result
from ..core.samples import center_square, layer_samples, spatial_layer
from ..core.visualize import COSSIM_POW, visualize_directions
from ..zoo import as_model

#: Side of each group's visualization (px), and of each activation-grid cell.
DEFAULT_SIZE = 128
DEFAULT_CELL_SIZE = 64
DEFAULT_GROUPS = 6
DEFAULT_STEPS = 256
DEFAULT_GRID_STEPS = 128

#: Distinct colours for the groups' maps and frames (Lucid's building blocks colour each group).
PALETTE = torch.tensor(
    [
        [0.90, 0.10, 0.10],  # red
        [0.10, 0.45, 0.95],  # blue
        [1.00, 0.75, 0.00],  # yellow
        [0.15, 0.75, 0.25],  # green
        [0.75, 0.20, 0.85],  # purple
        [0.00, 0.80, 0.85],  # cyan
        [1.00, 0.45, 0.00],  # orange
        [1.00, 0.40, 0.70],  # pink
        [0.55, 0.35, 0.15],  # brown
        [0.60, 0.85, 0.10],  # lime
    ]
)


def group_colour(i: int) -> torch.Tensor:
    """The RGB colour (3,) of group ``i``: the palette, then evenly spaced hues beyond it."""
    if i < len(PALETTE):
        return PALETTE[i]
    h = (i * 0.618034) % 1.0  # golden-ratio hues stay apart for any count
    k = (torch.tensor([5.0, 3.0, 1.0]) + h * 6) % 6
    return 1 - (torch.minimum(k, 4 - k).clamp(0, 1))


def _upsample(maps: torch.Tensor, side: int) -> torch.Tensor:
    """``k×h×w`` maps, each scaled to [0, 1] by its maximum, at ``side×side`` (bilinear)."""
    m = maps / maps.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return F.interpolate(m[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)


def _framed(img: torch.Tensor, colour: torch.Tensor, side: int, border: int) -> torch.Tensor:
    """``img`` (3×s×s) scaled to ``side`` inside a ``border``-px frame of ``colour``."""
    inner = F.interpolate(img[None], size=(side - 2 * border,) * 2, mode="bilinear", antialias=True)[0]
    out = colour.view(3, 1, 1).expand(3, side, side).clone()
    out[:, border : side - border, border : side - border] = inner.clamp(0, 1)
    return out


@dataclass
class GroupsResult(Result):
    """A photo's neuron groups at one layer: where each fires and what it detects."""

    photo: torch.Tensor  # 1×3×H×W in [0, 1]: the square the network saw
    layer: str
    maps: torch.Tensor  # k×h×w >= 0: each group's NMF weight at each position of the layer's map
    directions: torch.Tensor  # k×C: each group in the layer's channel space
    images: torch.Tensor  # k×3×s×s: each direction's feature visualization
    error: float  # relative reconstruction error ||X − W H|| / ||X|| of the factorization

    @property
    def k(self) -> int:
        return len(self.maps)

    def colour(self, i: int) -> torch.Tensor:
        return group_colour(i)

    def overlay(self, i: int, alpha: float = 0.85) -> torch.Tensor:
        """Group ``i``'s map (1×3×H×W) in its colour over a dimmed grey copy of the photo."""
        if not 0 <= i < self.k:
            raise FeaturevisError(f"group {i} out of range: 0..{self.k - 1}")
        side = self.photo.shape[-1]
        m = _upsample(self.maps[i : i + 1], side)[0]
        grey = 0.55 * self.photo[0].mean(0, keepdim=True).expand(3, side, side)
        a = alpha * m[None]
        return ((1 - a) * grey + a * self.colour(i).view(3, 1, 1))[None].clamp(0, 1)

    def dominant(self) -> torch.Tensor:
        """Every position coloured by its strongest group (1×3×H×W), shaded by its strength."""
        side = self.photo.shape[-1]
        m = _upsample(self.maps, side)
        strength, which = m.max(0)
        colours = torch.stack([self.colour(i) for i in range(self.k)])  # k×3
        rgb = colours[which].permute(2, 0, 1)
        grey = 0.55 * self.photo[0].mean(0, keepdim=True)
        a = 0.85 * strength[None]
        return ((1 - a) * grey + a * rgb)[None].clamp(0, 1)

    @property
    def image(self) -> torch.Tensor:
        """The building-blocks panel: top row the photo and each group's map; bottom row all
        groups at once (each position in its strongest group's colour) and each group's
        visualization in a frame of its colour."""
        side = self.photo.shape[-1]
        border = max(2, side // 40)
        top = [self.photo[0]] + [self.overlay(i)[0] for i in range(self.k)]
        bottom = [self.dominant()[0]] + [_framed(self.images[i], self.colour(i), side, border) for i in range(self.k)]
        return make_grid(torch.stack(top + bottom), ncols=self.k + 1, pad=4)

    def __repr__(self) -> str:
        return f"GroupsResult({self.k} groups at {self.layer}, error {self.error:.3f})"


def _check_count(k: int, layer: str, shape: tuple[int, int, int]) -> None:
    c, h, w = shape
    most = min(c, h * w)
    if not 1 <= k <= most:
        raise FeaturevisError(f"groups must be 1..{most} at {layer} ({c} channels, {w}x{h} positions), not {k}")


def groups(
    model: str | torch.nn.Module | FeatureModel,
    photo: ImageLike,
    layer: str | None = None,
    *,
    groups: int = DEFAULT_GROUPS,
    size: int | None = None,
    steps: int = DEFAULT_STEPS,
    cossim_pow: float = COSSIM_POW,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: Callable[[], None] | None = None,
) -> GroupsResult:
    """Factor ``photo``'s activations at ``layer`` into ``groups`` neuron groups and draw each.

    Args:
        photo: any image; its centre square is fed at the model's input size.
        layer: a layer with a spatial map (default: the model's default layer).
        size: side of each group's visualization (default :data:`DEFAULT_SIZE`).
        steps: optimization steps of the (one, batched) render of all groups.
        cossim_pow: the cosine weighting of the direction objective (0: the plain projection).
        on_step: called after every render step (a job's progress; raising there stops the work).
    Returns:
        A :class:`GroupsResult`, groups ordered by how much of the photo they cover. Ctrl-C
        during the render keeps the factorization and the images as they were.
    """
    fm = as_model(model)
    fm.to(resolve_device(device))
    side = fm.input_size
    layer, shape = spatial_layer(fm, layer, side)
    _check_count(groups, layer, shape)
    square = center_square(as_image(photo, "photo"), side)
    samples = layer_samples(fm, [square], layer, side=side)
    factors = nmf(samples.values, groups, seed=seed)
    h, w = samples.hw
    maps = torch.zeros(groups, h, w)
    maps[:, samples.xy[:, 1], samples.xy[:, 0]] = factors.weights.T
    order = maps.flatten(1).sum(1).argsort(descending=True)
    maps, directions = maps[order], factors.directions[order]
    images, interrupted = visualize_directions(
        fm, layer, directions, cossim_pow=cossim_pow, size=size or DEFAULT_SIZE, steps=steps, seed=seed,
        chunk=groups, progress=progress, description=f"{groups} groups", on_step=on_step,
    )  # fmt: skip
    return GroupsResult(
        photo=square.cpu(),
        layer=layer,
        maps=maps,
        directions=directions,
        images=images,
        error=factors.error,
        settings=dict(
            model=fm.name,
            layer=layer,
            groups=groups,
            size=size or DEFAULT_SIZE,
            steps=steps,
            cossim_pow=cossim_pow,
            seed=seed,
            split=factors.split,
        ),
        interrupted=interrupted,
    )


@dataclass
class ActivationGridResult(Result):
    """One visualization per cell of a photo's activation map: what the network sees where."""

    photo: torch.Tensor  # 1×3×H×W: the square the network saw
    layer: str
    vectors: torch.Tensor  # (rows·cols)×C: each cell's activation vector, row by row
    rows: int
    cols: int
    images: torch.Tensor  # (rows·cols)×3×s×s, in the same order

    @property
    def image(self) -> torch.Tensor:
        """The photo (scaled to the grid's height) beside the grid of cell visualizations."""
        grid = make_grid(self.images, ncols=self.cols, pad=1)
        gh = grid.shape[-2]
        photo = F.interpolate(self.photo, size=(gh, gh), mode="bilinear", antialias=True)[0]
        gap = torch.ones(3, gh, 8)
        return torch.cat([photo.clamp(0, 1), gap, grid], -1)

    def __repr__(self) -> str:
        return f"ActivationGridResult({self.rows}x{self.cols} cells at {self.layer})"


def activation_grid(
    model: str | torch.nn.Module | FeatureModel,
    photo: ImageLike,
    layer: str | None = None,
    *,
    cells: int | None = None,
    size: int = DEFAULT_CELL_SIZE,
    steps: int = DEFAULT_GRID_STEPS,
    cossim_pow: float = COSSIM_POW,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ActivationGridResult:
    """Render each cell's activation vector of ``photo`` at ``layer`` as a direction.

    Args:
        cells: at most this many cells a side: the map is average-pooled down to it (default:
            every cell of the map, which is 14x14 = 196 renders at lite0's ``_blocks.8``).
        size: side of each cell's visualization.
    Returns:
        An :class:`ActivationGridResult`; Ctrl-C keeps the cells rendered so far (the rest
        stay white).
    """
    fm = as_model(model)
    fm.to(resolve_device(device))
    side = fm.input_size
    layer, (_, h, w) = spatial_layer(fm, layer, side)
    if cells is not None and cells < 1:
        raise FeaturevisError(f"cells must be at least 1, not {cells}")
    square = center_square(as_image(photo, "photo"), side)
    with torch.no_grad():
        a = activations(fm, square.to(fm.device), [layer])[layer].float().cpu()
    if cells is not None and (h > cells or w > cells):
        a = F.adaptive_avg_pool2d(a, (min(h, cells), min(w, cells)))
    rows, cols = a.shape[-2:]
    vectors = a[0].flatten(1).T.contiguous()  # (rows·cols)×C, row by row
    live = vectors.norm(dim=1) > 0  # a dead cell (all zero after a ReLU) has no direction: left white
    images = torch.ones(len(vectors), 3, size, size)
    interrupted = False
    if live.any():
        drawn, interrupted = visualize_directions(
            fm, layer, vectors[live], cossim_pow=cossim_pow, size=size, steps=steps, seed=seed, progress=progress,
            description=f"{rows}x{cols} cells",
        )  # fmt: skip
        images[live.nonzero()[: len(drawn), 0]] = drawn
    return ActivationGridResult(
        photo=square.cpu(),
        layer=layer,
        vectors=vectors,
        rows=rows,
        cols=cols,
        images=images,
        settings=dict(
            model=fm.name, layer=layer, cells=cells, size=size, steps=steps, cossim_pow=cossim_pow, seed=seed
        ),
        interrupted=interrupted,
    )
