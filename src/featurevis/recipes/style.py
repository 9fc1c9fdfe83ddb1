"""Neural style transfer (Gatys et al. 2016): paint a photo's content with another image's style.

The *style* of an image, to a network, is which features occur together regardless of where:
the Gram matrix of a layer's channels. The *content* is the layer's feature map itself. So we
optimize an image (with :func:`featurevis.optimize`, starting from the content photo or noise)
whose Gram matrices on several layers match the style image's and whose features on one deeper
layer match the content's, under a total-variation prior.

Both losses are *relative* (``||G - G_s||² / ||G_s||²``, ``||F - F_c||² / ||F_c||²``) so one
``style_weight`` works across layers and models.

Layers. For EfficientNet-Lite (``efficientnet_lite0/1/2``) the defaults are style on
``_stem_act, _blocks.1, _blocks.3, _blocks.5`` (colour and edges up to small motifs: the ends
of the first stages) and content on ``_blocks.5``. A deeper style layer (``_blocks.8``)
imprints the style image's *objects* (a cup's outline on a rocket) and keeps less of the
content. The content layer was not tuned: ``_blocks.5`` is the deepest style layer, and its
map (1/16 of the image side) still holds the layout. On three scikit-image pairs at 192 px,
300 steps: with ``_blocks.8`` and Adam 0.1 with cosine decay the Gram loss fell 86-94 %; these
four layers with a constant 0.2 reach 95-98 % (92-98 % at 256 px, see
``benchmarks/style_speed.py``) with lower content loss.
For VGG (``vgg19``, ``vgg16``, or any VGG-shaped module) they are Gatys et al.'s classic
choice: style on the ReLUs of conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 and content on
conv4_2 (for VGG-19 ``features.1, .6, .11, .20, .29`` and ``features.22``).
Other models get layers spread over their first two thirds (:func:`default_layers`).

Extras: several styles blend by weighting their Gram matrices; ``preserve_color`` keeps the
content's colours (the result's luminance with the content's chroma, in YIQ); the result
comes back at the content's own size (work happens at ``size`` px, then upsampled).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core import objectives as O
from ..core.engine import optimize, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.images import ImageLike, as_image, fit_size
from ..core.losses import content_loss, perceptual, resolve_layers, style_grams, style_loss
from ..core.memory import check_request
from ..core.model import FeatureModel
from ..core.params import PixelImage
from ..core.results import Result
from ..zoo import as_model

#: Style and content layers that work well on the EfficientNet-Lite zoo models.
DEFAULT_SIZE = 256
#: Free border (px) optimized around the image and cut off at the end.
EDGE_MARGIN = 8
#: Smallest working side: below it the deep layers' maps are too small to carry style.
MIN_SIDE = 16


# -- colour ---------------------------------------------------------------------------------
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def preserve_color(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content's chroma (YIQ), so only texture is transferred."""
    m = _YIQ.to(result)
    yr = torch.einsum("ij,bjhw->bihw", m, result)
    yc = torch.einsum("ij,bjhw->bihw", m, content.to(result))
    mixed = torch.cat([yr[:, :1], yc[:, 1:]], 1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), mixed).clamp(0, 1)


# -- the recipe -----------------------------------------------------------------------------
@dataclass
class StyleResult(Result):
    """A stylized image and its losses. Displays itself in notebooks; ``save()`` writes it."""

    image: torch.Tensor  # 1×3×H×W in [0, 1], CPU, the content's own size
    style_before: float  # style loss of the starting image
    style_after: float
    content_before: float
    content_after: float

    @property
    def style_drop(self) -> float:
        """Fraction of the starting style loss removed (0.95 = 95 % lower)."""
        return 1 - self.style_after / self.style_before if self.style_before > 0 else 0.0

    def __repr__(self) -> str:
        h, w = self.image.shape[-2:]
        return (
            f"StyleResult({w}x{h}, style {self.style_before:.3g} -> {self.style_after:.3g}, "
            f"content {self.content_before:.3g} -> {self.content_after:.3g})"
        )


def _styles(style: ImageLike | Sequence[ImageLike], channels: int = 3) -> list[torch.Tensor]:
    if isinstance(style, (str, os.PathLike, torch.Tensor)):
        style = [style]
    out = [as_image(s, "style image", channels) for s in style]
    if not out:
        raise FeaturevisError("give at least one style image")
    return out


def style_transfer(
    model: str | torch.nn.Module | FeatureModel,
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike],
    *,
    style_weights: Sequence[float] | None = None,
    style_weight: float = 10.0,
    content_weight: float = 1.0,
    tv: float = 0.3,
    style_layers: str | Sequence[str] | None = None,
    content_layer: str | None = None,
    init: str = "content",
    size: int | None = DEFAULT_SIZE,
    steps: int = 300,
    lr: float = 0.2,
    color: bool = False,
    schedule: str = "constant",
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> StyleResult:
    """Optimize an image with ``content``'s structure and ``style``'s textures (Gatys et al.).

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module.
        content: the photo to repaint (tensor in [0, 1] or a file path).
        style: one style image or several, blended by ``style_weights``.
        style_weight, content_weight, tv: the loss's balance (relative losses, so ~10 : 1).
        style_layers, content_layer: layer names (default: :func:`default_layers`).
        init: ``"content"`` (faster, keeps more structure) or ``"noise"``.
        size: longest side to work at (``None``: the content's own size); the result is
            returned at the content's size either way.
        color: keep the content's colours, transferring only luminance texture.
    """
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    s_layers, c_layer = resolve_layers(fm, style_layers, content_layer)
    if init not in ("content", "noise"):
        raise FeaturevisError(f"unknown init {init!r}: use content or noise")
    original = as_image(content, "content image", fm.channels)
    styles = _styles(style, fm.channels)
    weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
    photo = fit_size(original, size).to(dev)
    hw = tuple(photo.shape[-2:])
    if min(hw) < MIN_SIDE:
        raise FeaturevisError(f"content works at {hw[1]}x{hw[0]} px; need at least {MIN_SIDE} px a side (raise size)")
    check_request(fm, 1, *hw, what=f"style transfer at {hw[1]}x{hw[0]} px", hint="use a smaller size", device=dev)
    grams = style_grams(fm, styles, weights, s_layers, max(hw))
    # Optimize a canvas with a reflected border and keep its centre: the network's asymmetric
    # "SAME" padding otherwise grows a band of style artefacts along the top and left edges.
    m = min(EDGE_MARGIN, min(hw) // 2 - 1)
    canvas = F.pad(photo, (m,) * 4, mode="reflect")
    with torch.no_grad():
        c_target = fm(canvas, [c_layer])[c_layer].detach()

    obj = perceptual(grams, c_layer, c_target, style_weight, content_weight, name="style")
    obj = obj - tv * O.total_variation()
    validate(fm, obj, hw)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if init == "content":
        p = PixelImage(1, canvas.shape[-2:], init=canvas.cpu(), decorrelate=True)
    else:
        p = PixelImage(1, canvas.shape[-2:], sd=0.5, decorrelate=True, generator=g)

    def losses(x: torch.Tensor) -> tuple[float, float]:
        with torch.no_grad():
            acts = fm(x.to(dev), [*s_layers, c_layer])
            return float(style_loss(acts, grams)), float(content_loss(acts, c_layer, c_target))

    with torch.no_grad():
        s0, c0 = losses(p.to(dev)())
    r = optimize(fm, obj, p, steps=steps, lr=lr, generator=g, progress=progress, description="style", schedule=schedule)
    s1, c1 = losses(r.images)
    out = r.images[..., m : m + hw[0], m : m + hw[1]]
    if color:
        out = preserve_color(out, photo.cpu())
    if tuple(out.shape[-2:]) != tuple(original.shape[-2:]):
        out = F.interpolate(out, size=original.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        if color:  # the chroma at full resolution comes straight from the content
            out = preserve_color(out, original)
    return StyleResult(
        image=out.cpu(),
        style_before=s0,
        style_after=s1,
        content_before=c0,
        content_after=c1,
        settings=dict(
            model=fm.name,
            style_layers=s_layers,
            content_layer=c_layer,
            style_weight=style_weight,
            content_weight=content_weight,
            tv=tv,
            init=init,
            size=hw,
            steps=steps,
            lr=lr,
            color=color,
            style_weights=weights,
            seed=seed,
        ),
        interrupted=r.interrupted,
        seconds=r.seconds,
    )
