"""Activation atlas (Carter et al. 2019): a map of everything a layer represents.

Feature visualization of single channels shows what the network *can* detect; an atlas shows
the space of what it *does* represent on real images. Activation vectors are collected at
random positions of many image patches (:func:`~featurevis.core.samples.layer_samples`:
``per_image`` positions each, so memory grows with the samples kept, not with the images),
laid out in two dimensions by UMAP (cosine metric, as the paper), and the plane is cut into a
``grid``×``grid`` lattice. Each cell with enough samples is drawn by feature visualization of
its averaged activation vector as a direction (batched renders); neighbouring cells hold
similar activations, so the atlas reads as smooth regions (fur, eyes, text, wheels, ...).

A *class atlas* (``class_=C``) keeps only what matters for one class: each sample's
attribution to class ``C`` is the gradient of C's logit w.r.t. the layer, dotted with the
activation at that position (gradient × activation: the linear estimate of what that position
adds to the logit). The samples kept are the positive ones in the top :data:`CLASS_KEEP` of
attribution; each cell averages its samples weighted by their attribution.

With fewer than :data:`MIN_IMAGES` images (the four offline sample photos by default) there
are too few distinct patches for a map, so :data:`AUGMENTED` random crops and flips of them
are drawn instead (:func:`~featurevis.core.photos.random_crops`); ``settings["augmented"]``
says so.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..core.engine import resolve_device
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, as_image
from ..core.model import FeatureModel
from ..core.photos import folder_files, iter_images, random_crops, sample_photos
from ..core.results import Result
from ..core.samples import Samples, layer_samples, spatial_layer
from ..core.visualize import COSSIM_POW, visualize_directions
from ..zoo import as_model

DEFAULT_GRID = 20
DEFAULT_PER_IMAGE = 16
#: Cell side and steps: small cells, so a 20x20 atlas renders in minutes on a CPU; 256 steps,
#: because at 128 the cells of flat regions (sky, backgrounds) were still grey noise.
DEFAULT_SIZE = 48
DEFAULT_STEPS = 256
#: A cell needs this many samples to be drawn (fewer: left empty, as in the paper).
MIN_COUNT = 3
#: Fewer images than this are augmented into :data:`AUGMENTED` random crops and flips.
MIN_IMAGES = 64
AUGMENTED = 256
#: A class atlas keeps the samples in this top fraction of attribution (and positive).
CLASS_KEEP = 0.25
#: Renders per batched run.
CHUNK = 64


@dataclass
class AtlasResult(Result):
    """An activation atlas: the samples' 2-D layout, the cells drawn and their pictures."""

    layer: str
    grid: int
    layout: torch.Tensor  # M×2 in [0, 1]: each kept sample's place on the plane (x, y)
    cells: list[tuple[int, int, int]]  # (row, col, number of samples) of each drawn cell
    directions: torch.Tensor  # len(cells)×C: each cell's (weighted) mean activation vector
    images: torch.Tensor  # len(cells)×3×s×s: each cell's visualization
    samples: Samples  # the kept samples (values, which image, where)
    kept: torch.Tensor  # bool, over every collected sample: kept for the layout
    class_: int | None = None
    class_name: str | None = None
    #: seconds spent collecting samples and in UMAP, and the collected samples per second
    timings: dict | None = None

    @property
    def image(self) -> torch.Tensor:
        """The atlas: each drawn cell's picture at its place in the grid, empty cells white."""
        s = self.images.shape[-1] if len(self.images) else DEFAULT_SIZE
        pad = 1
        side = self.grid * (s + pad) - pad
        out = torch.ones(3, side, side)
        for (row, col, _), img in zip(self.cells, self.images, strict=True):
            y, x = row * (s + pad), col * (s + pad)
            out[:, y : y + s, x : x + s] = img
        return out

    def cell_of(self, row: int, col: int) -> int:
        """Index into ``cells``/``directions``/``images`` of the cell at ``(row, col)``."""
        for i, (r, c, _) in enumerate(self.cells):
            if (r, c) == (row, col):
                return i
        raise FeaturevisError(f"cell ({row}, {col}) is empty")

    def __repr__(self) -> str:
        what = f", class {self.class_} {self.class_name}" if self.class_ is not None else ""
        return f"AtlasResult({len(self.cells)} cells of {self.grid}x{self.grid} at {self.layer}{what})"


def _umap(values: torch.Tensor, seed: int, neighbors: int = 15):
    try:
        import umap
    except ImportError as e:
        raise FeaturevisError("the activation atlas needs umap-learn: pip install 'featurevis[explain]'") from e
    n = len(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that random_state disables parallelism
        reducer = umap.UMAP(
            n_components=2, n_neighbors=min(neighbors, n - 1), min_dist=0.1, metric="cosine", random_state=seed
        )
        return torch.from_numpy(reducer.fit_transform(values.numpy())).float()


def _unit_square(xy: torch.Tensor) -> torch.Tensor:
    """The layout scaled to [0, 1] per axis between its 1st and 99th percentiles (a few
    outlying samples would otherwise squeeze everything else into a corner)."""
    lo = torch.quantile(xy, 0.01, dim=0)
    hi = torch.quantile(xy, 0.99, dim=0)
    return ((xy - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)


def _image_source(
    images: str | os.PathLike | Sequence[ImageLike] | None, side: int, seed: int
) -> tuple[Iterator[torch.Tensor], int, str, bool]:
    """The photos to sample (loaded lazily), how many, what they are, and whether augmented."""
    if images is None:
        photos, what = sample_photos(), "the sample photos"
        if not photos:
            raise FeaturevisError("no sample photos could be loaded; give a folder of images")
    elif isinstance(images, (str, os.PathLike)):
        files = folder_files(images)
        what = f"{len(files)} images in {images}"
        if len(files) >= MIN_IMAGES:
            return iter_images(files), len(files), what, False
        photos = list(iter_images(files))
    else:
        photos = [as_image(i, "image") for i in images]
        if not photos:
            raise FeaturevisError("no images given for the atlas")
        what = f"{len(photos)} images"
        if len(photos) >= MIN_IMAGES:
            return iter(photos), len(photos), what, False
    g = torch.Generator().manual_seed(seed)
    crops = (random_crops(photos, 1, side, g) for _ in range(AUGMENTED))
    return crops, AUGMENTED, f"{AUGMENTED} random crops/flips of {what}", True


def atlas(
    model: str | torch.nn.Module | FeatureModel,
    layer: str | None = None,
    images: str | os.PathLike | Sequence[ImageLike] | None = None,
    *,
    grid: int = DEFAULT_GRID,
    per_image: int = DEFAULT_PER_IMAGE,
    class_: int | str | None = None,
    size: int = DEFAULT_SIZE,
    steps: int = DEFAULT_STEPS,
    min_count: int = MIN_COUNT,
    cossim_pow: float = COSSIM_POW,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> AtlasResult:
    """An activation atlas of ``layer`` over ``images``.

    Args:
        layer: a layer with a spatial map (default: the model's default layer).
        images: a folder (read one image at a time), a list of images, or ``None``: the offline
            sample photos, augmented (see the module's note).
        grid: cells a side of the lattice over the layout.
        per_image: random positions sampled from each image's map.
        class_: a class (index or name): keep and weight samples by their attribution to it.
        size, steps: each cell's render.
        min_count: samples a cell needs to be drawn.
    Returns:
        An :class:`AtlasResult`. Ctrl-C during the renders keeps the cells drawn so far.
    """
    if grid < 1 or per_image < 1 or min_count < 1:
        raise FeaturevisError(
            f"grid, per_image and min_count must be at least 1, not {grid}, {per_image} and {min_count}"
        )
    fm = as_model(model)
    fm.to(resolve_device(device))
    side = fm.input_size
    layer, _ = spatial_layer(fm, layer, side)
    cls = None if class_ is None else fm.class_index(class_)
    photos, total, what, augmented = _image_source(images, side, seed)

    start = time.perf_counter()
    samples = layer_samples(
        fm, photos, layer, side=side, per_image=per_image, seed=seed, total=total, progress=progress,
        description="atlas samples", attribute_to=cls,
    )  # fmt: skip
    collect_s = time.perf_counter() - start
    kept = torch.ones(len(samples), dtype=torch.bool)
    weight = torch.ones(len(samples))
    if cls is not None:
        attr = samples.attribution
        kept = (attr > 0) & (attr >= torch.quantile(attr, 1 - CLASS_KEEP))
        weight = attr.clamp_min(0)
    if int(kept.sum()) < max(4, min_count):
        raise FeaturevisError(f"only {int(kept.sum())} samples kept: too few for an atlas; give more images")
    values, weight = samples.values[kept], weight[kept]

    start = time.perf_counter()
    layout = _unit_square(_umap(values, seed))
    umap_s = time.perf_counter() - start
    col = (layout[:, 0] * grid).long().clamp(max=grid - 1)
    row = ((1 - layout[:, 1]) * grid).long().clamp(max=grid - 1)  # y up, as a plot
    cell = row * grid + col
    counts = torch.bincount(cell, minlength=grid * grid)
    sums = torch.zeros(grid * grid, values.shape[1]).index_add_(0, cell, values * weight[:, None])
    wsum = torch.zeros(grid * grid).index_add_(0, cell, weight)
    drawn = ((counts >= min_count) & (wsum > 0)).nonzero()[:, 0]
    directions = sums[drawn] / wsum[drawn, None]
    cells = [(int(i) // grid, int(i) % grid, int(counts[i])) for i in drawn]
    if not cells:
        raise FeaturevisError(f"no cell of the {grid}x{grid} grid has {min_count} samples; use a smaller --grid")
    images_, interrupted = visualize_directions(
        fm, layer, directions, cossim_pow=cossim_pow, size=size, steps=steps, seed=seed, chunk=CHUNK,
        progress=progress, description=f"atlas {len(cells)} cells",
    )  # fmt: skip
    cells, directions = cells[: len(images_)], directions[: len(images_)]
    kept_samples = Samples(
        values, samples.image[kept], samples.xy[kept], samples.hw, samples.side,
        None if samples.attribution is None else samples.attribution[kept], cls,
    )  # fmt: skip
    return AtlasResult(
        layer=layer,
        grid=grid,
        layout=layout,
        cells=cells,
        directions=directions,
        images=images_,
        samples=kept_samples,
        kept=kept,
        class_=cls,
        class_name=None if cls is None else fm.class_name(cls),
        timings=dict(
            collect_s=collect_s,
            samples_per_s=len(samples) / max(collect_s, 1e-9),
            umap_s=umap_s,
            samples=len(samples),
            images=total,
        ),
        settings=dict(
            model=fm.name,
            layer=layer,
            images=what,
            augmented=augmented,
            grid=grid,
            per_image=per_image,
            class_=cls,
            size=size,
            steps=steps,
            min_count=min_count,
            cossim_pow=cossim_pow,
            seed=seed,
        ),
        interrupted=interrupted,
    )
