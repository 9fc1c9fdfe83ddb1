"""Choosing layers: spread over a network's depth, or parsed from ``LAYER=WEIGHT`` lists.

Inversion strips, style transfer's defaults and the CLI's ``-l`` options all pick layers this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from torch import nn

from .errors import FeaturevisError
from .model import INPUT, FeatureModel

T = TypeVar("T")

#: Number of layers ``--all-layers`` reconstructs, spread from shallow to deep.
DEPTH_LAYERS = 6


def depth_layers(model: FeatureModel, n: int = DEPTH_LAYERS) -> list[str]:
    """``n`` layers spread evenly from shallow to deep over the model's top-level feature maps."""
    infos = [
        i
        for i in model.layers(min(model.input_size, 128))
        if i.name.count(".") <= 1 and i.spatial and i.kind not in ("Identity", "Dropout")
    ]
    if not infos:
        raise FeaturevisError(f"model {model.name} has no convolutional layers to invert")
    return spread([i.name for i in infos], n)


def spread(items: Sequence[T], n: int) -> list[T]:
    """Up to ``n`` of ``items``, evenly spaced from the first to the last (all when there are
    no more than ``n``)."""
    if len(items) <= n:
        return list(items)
    return [items[k] for k in sorted({round(k * (len(items) - 1) / (n - 1)) for k in range(n)})]


def parse_layers(model: FeatureModel, layers: str | Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """``"a,b=0.5"``, a list or a ``{layer: weight}`` mapping as validated ``{layer: weight}``."""
    if isinstance(layers, Mapping):
        items = [(str(k), float(v)) for k, v in layers.items()]
    else:
        parts = [p.strip() for p in layers.split(",")] if isinstance(layers, str) else [str(p) for p in layers]
        items = []
        for p in parts:
            if not p:
                continue
            name, eq, w = p.partition("=")
            try:
                items.append((name.strip(), float(w) if eq else 1.0))
            except ValueError:
                raise FeaturevisError(f"malformed layer weight {p!r}: use LAYER=WEIGHT, e.g. _blocks.6=0.5") from None
    if not items:
        raise FeaturevisError("no layer given")
    out: dict[str, float] = {}
    for name, w in items:
        if name == INPUT:
            raise FeaturevisError("'input' is not a layer to match; pick a network layer")
        model.check_layer(name)
        out[name] = out.get(name, 0.0) + w
    return out


def conv_names(net: nn.Module) -> dict[str, str] | None:
    """``{"conv1_1": "features.1", ...}`` for any VGG-shaped net (also torchvision's), else None.

    A net is VGG-shaped when it has a ``features`` Sequential of 3x3 convs, ReLUs (optionally
    batch norms) and exactly five max-pools. Each name points at the ReLU after that conv.
    """
    features = getattr(net, "features", None)
    if not isinstance(features, nn.Sequential):
        return None
    names: dict[str, str] = {}
    block, conv, pending = 1, 0, False
    for i, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            if m.kernel_size != (3, 3):
                return None
            conv, pending = conv + 1, True
        elif isinstance(m, nn.ReLU) and pending:
            names[f"conv{block}_{conv}"] = f"features.{i}"
            pending = False
        elif isinstance(m, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif not isinstance(m, (nn.BatchNorm2d, nn.ReLU)):
            return None
    return names if block == 6 else None
