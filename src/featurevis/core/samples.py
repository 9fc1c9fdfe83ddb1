"""A layer's activations over a set of photos, as samples: one per spatial position (or token).

Neuron groups, activation atlases and concept atoms all start from the same table: every
position of every photo's activation map at one layer, a vector over the layer's channels.
Collecting it is one batched, no-grad pass per chunk of photos, with progress for the
thousands of images an atlas wants; optionally only a few random positions per photo, so a
large folder does not need all of its maps in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .engine import activations
from .errors import FeaturevisError
from .model import FeatureModel


@dataclass
class Samples:
    """``values[i]`` is the activation vector (``C``) at position ``xy[i]`` of photo ``image[i]``."""

    values: torch.Tensor  # M×C float32, CPU
    image: torch.Tensor  # M, long: which photo
    xy: torch.Tensor  # M×2, long: (x, y) cell of that photo's map
    hw: tuple[int, int]  # the map's (height, width)
    side: int  # the square side the photos were fed at
    #: M: each sample's attribution to class ``attributed_to`` (gradient of its logit × activation,
    #: summed over channels), when asked for
    attribution: torch.Tensor | None = None
    attributed_to: int | None = None

    def __len__(self) -> int:
        return len(self.values)


def center_square(img: torch.Tensor, side: int) -> torch.Tensor:
    """A centre square of ``img`` (``[1×]3×H×W``) resized to ``side``: what the samples see."""
    img = img if img.dim() == 4 else img[None]
    h, w = img.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[..., top : top + s, left : left + s]
    return F.interpolate(img.float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def spatial_layer(model: FeatureModel, layer: str | None, side: int | None = None) -> tuple[str, tuple[int, ...]]:
    """``layer`` (default: the model's default layer) and its ``(C, H, W)`` shape at ``side`` px.

    Samples are positions, so a layer without a spatial map (a pooled vector, the logits) is
    one clear error here, before any work.
    """
    layer = layer or model.default_layer
    if not layer:
        raise FeaturevisError(f"model {model.name} has no default layer; give one (-l LAYER)")
    shape = model.layer_shape(layer, side or model.input_size)
    if len(shape) != 3:
        raise FeaturevisError(f"{layer} has no spatial map (shape {tuple(shape)}): choose a convolutional layer")
    return layer, shape


def layer_samples(
    model: FeatureModel,
    photos: Iterable[torch.Tensor],
    layer: str,
    *,
    side: int | None = None,
    per_image: int | None = None,
    batch: int = 8,
    seed: int = 0,
    total: int | None = None,
    progress: bool = False,
    description: str = "activations",
    attribute_to: int | None = None,
) -> Samples:
    """Every position of ``layer``'s map (or ``per_image`` random ones) over ``photos``.

    Args:
        photos: ``[1×]3×H×W`` images in [0, 1], any sizes (each is centre-cropped to a square of
            ``side`` px, default the model's input size); a generator is fine.
        total: how many photos there are, for the progress bar when ``photos`` has no length.
        attribute_to: also record each sample's attribution to this class: the gradient of its
            logit w.r.t. the layer, dotted with the activation there (gradient × activation,
            the linear estimate of what the position adds to the logit; Carter et al. 2019
            filter class atlases by it). Costs a full forward and backward pass per chunk.
    Raises:
        FeaturevisError: ``layer`` has no spatial map, or no photos were given.
    """
    side = side or model.input_size
    shape = model.layer_shape(layer, side)
    if len(shape) != 3:
        raise FeaturevisError(f"{layer} has no positions (shape {tuple(shape)}): samples need a spatial map")
    g = torch.Generator().manual_seed(seed)
    values, image, xy, attribution = [], [], [], []
    n = 0
    hw = tuple(shape[1:])
    bar = tqdm(total=total if total is not None else _len(photos), desc=description, unit="image",
               disable=not progress, leave=False, dynamic_ncols=True)  # fmt: skip

    def flush(chunk: list[torch.Tensor]) -> None:
        nonlocal n, hw
        x = torch.cat(chunk).to(model.device)
        if attribute_to is None:
            with torch.no_grad():
                a = activations(model, x, [layer])[layer].cpu()
        else:
            a, grad = _attributed(model, x, layer, attribute_to)
            attr = (a * grad).sum(1).flatten(1)  # B×(h·w)
        b, c, h, w = a.shape
        hw = (h, w)
        flat = a.permute(0, 2, 3, 1).reshape(b, h * w, c)
        for i in range(b):
            every = per_image is None or per_image >= h * w
            idx = torch.arange(h * w) if every else torch.randperm(h * w, generator=g)[:per_image]
            values.append(flat[i, idx])
            if attribute_to is not None:
                attribution.append(attr[i, idx])
            image.append(torch.full((len(idx),), n + i, dtype=torch.long))
            xy.append(torch.stack([idx % w, idx // w], 1))
        n += b
        bar.update(b)

    chunk: list[torch.Tensor] = []
    try:
        for photo in photos:
            chunk.append(center_square(photo, side))
            if len(chunk) == batch:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
    finally:
        bar.close()
    if not values:
        raise FeaturevisError("no photos to take activations from")
    attributed = torch.cat(attribution) if attribute_to is not None else None
    return Samples(torch.cat(values), torch.cat(image), torch.cat(xy), hw, side, attributed, attribute_to)


def _attributed(model: FeatureModel, x: torch.Tensor, layer: str, cls: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``layer``'s activations of ``x`` and the gradient of logit ``cls`` w.r.t. them (CPU)."""
    from .gradients import objective_gradient
    from .objectives import class_logit

    _, _, hidden = objective_gradient(model, class_logit(cls), x, (layer,))
    a, grad = hidden[layer]
    return a.cpu(), grad.cpu()


def _len(x: object) -> int | None:
    try:
        return len(x)  # type: ignore[arg-type]
    except TypeError:
        return None
