"""Losses that several recipes share: relative feature distances, Gram (style) and content
losses, and the perceptual objective that both Gatys style transfer and fast-style training
maximize.

Every distance is *relative* (``||a - b||² / ||b||²``), so one weight means the same at every
layer and depth, and the numbers a recipe reports compare across models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from .errors import FeaturevisError
from .images import fit_size
from .layers import conv_names, depth_layers, parse_layers
from .model import FeatureModel
from .objectives import Objective

#: Style and content layers tuned for EfficientNet-Lite (benchmarks/style_speed.py).
LITE_STYLE_LAYERS = ("_stem_act", "_blocks.1", "_blocks.3", "_blocks.5")
LITE_CONTENT_LAYER = "_blocks.5"


def relative_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image ``||a - b||² / ||b||²``: a distance with the same meaning at every layer."""
    num = (a - b).pow(2).flatten(1).sum(1)
    den = b.pow(2).flatten(1).sum(1).clamp_min(1e-12)
    return num / den


def default_layers(model: FeatureModel) -> tuple[list[str], str]:
    """(style layers, content layer): the tuned Lite choice, VGG's classic one (Gatys et al.),
    else layers spread over the first 2/3."""
    if all(n in model.layer_names for n in (*LITE_STYLE_LAYERS, LITE_CONTENT_LAYER)):
        return list(LITE_STYLE_LAYERS), LITE_CONTENT_LAYER
    vgg = conv_names(model.net)
    if vgg is not None and "conv4_2" in vgg:
        return [vgg[f"conv{b}_1"] for b in range(1, 6)], vgg["conv4_2"]
    spread = depth_layers(model, 9)[:6]
    return spread[:5], spread[min(3, len(spread) - 1)]


def gram(f: torch.Tensor) -> torch.Tensor:
    """``B×C×C`` channel co-occurrence, averaged over positions (so it is size-independent)."""
    b, c = f.shape[:2]
    flat = f.reshape(b, c, -1)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def style_loss(acts: Mapping[str, torch.Tensor], grams: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-image mean over layers of the relative Gram distance to ``grams``."""
    total = 0.0
    for name, g in grams.items():
        gx = gram(acts[name].float())
        total = total + relative_error(gx, g.to(gx).expand_as(gx))
    return total / max(len(grams), 1)


def content_loss(acts: Mapping[str, torch.Tensor], layer: str, target: torch.Tensor) -> torch.Tensor:
    """Per-image relative feature distance to the content's features."""
    a = acts[layer].float()
    return relative_error(a, target.to(a).expand_as(a))


def style_grams(
    model: FeatureModel,
    styles: Sequence[torch.Tensor],
    weights: Sequence[float],
    layers: Sequence[str],
    side: int,
) -> dict[str, torch.Tensor]:
    """Blended target Gram matrices: each style at longest side ``side``, weighted average."""
    if len(styles) != len(weights):
        raise FeaturevisError(f"{len(styles)} style image(s) but {len(weights)} style weight(s)")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise FeaturevisError("style weights must be >= 0 and not all 0")
    total = sum(weights)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for s, w in zip(styles, weights, strict=True):
            acts = model(fit_size(s, side).to(model.device), list(layers))
            for name in layers:
                g = gram(acts[name].float()) * (w / total)
                out[name] = out[name] + g if name in out else g
    return out


def resolve_layers(
    model: FeatureModel, style_layers: str | Sequence[str] | None, content_layer: str | None
) -> tuple[list[str], str]:
    """Validated (style layers, content layer), defaults filled in."""
    d_style, d_content = default_layers(model)
    styles = list(parse_layers(model, style_layers)) if style_layers else d_style
    content = content_layer or d_content
    parse_layers(model, [content])
    return styles, content


def perceptual(
    grams: Mapping[str, torch.Tensor],
    content_layer: str,
    content_target: torch.Tensor | Callable[[dict[str, torch.Tensor]], torch.Tensor],
    style_weight: float = 10.0,
    content_weight: float = 1.0,
    name: str = "perceptual",
) -> Objective:
    """Minus the weighted style + content loss (Gatys et al.; Johnson et al.'s perceptual loss).

    ``content_target`` is the content's activation at ``content_layer``, or a callable that
    computes it from the step's activations and extras (fast-style training compares every
    batch with its own source crops, which its parameterization hands over as an extra).
    """
    layers = {*grams, content_layer}

    def fn(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        target = content_target(acts) if callable(content_target) else content_target
        return -(style_weight * style_loss(acts, grams) + content_weight * content_loss(acts, content_layer, target))

    return Objective(fn, frozenset(layers), name, tuple((n, None) for n in layers))
