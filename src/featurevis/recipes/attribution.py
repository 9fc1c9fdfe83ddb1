"""Attribution: which pixels, which places of a layer and which hidden channels drive an objective.

Any objective, not only a class: a class logit, a channel, a neuron, a direction or a weighted
sum of them (the TARGET language), so "why does this photo excite ``_blocks.8:12``?" is asked
the same way as "why is it a cat?".

- pixels: the input gradient (Simonyan et al. 2014), gradient × input (Shrikumar et al. 2016)
  and integrated gradients (Sundararajan et al. 2017: the gradient averaged along the straight
  path from a baseline to the photo, times their difference, so the attributions add up to
  ``f(photo) - f(baseline)``); any of them optionally SmoothGrad-averaged over noisy copies
  (Smilkov et al. 2017). The baseline is the preprocessing's zero point (what the network sees
  as an all-zero input: mid-grey for lite0, the ImageNet mean colour for torchvision-style
  models) or black.
- places: Grad-CAM (Selvaraju et al. 2017) generalized to any objective and any spatial
  layer, as gradient × activation summed over channels at each position, then ReLU. Grad-CAM
  weighs each channel by its spatially averaged gradient; the per-position product is the
  first-order contribution of each place and equals Grad-CAM where the gradient is the same
  at every position (a global-average-pooled linear head).
- channels: each channel of those layers ranked by gradient × activation summed over
  positions (Olah et al. 2018, "The Building Blocks of Interpretability"), shown with its
  feature visualization.

Faithfulness (Petsiuk et al. 2018, RISE): pixels are deleted from the photo (replaced by a
blurred copy, or its mean colour) in the order a map ranks them, or inserted into the blurred
copy, and the objective is evaluated after each step; a map that finds what matters drops the
objective fast (low deletion AUC) and restores it fast (high insertion AUC). A random map and
the raw gradient are the baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ..core import objectives as O
from ..core.engine import resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.gradients import noisy_mean, objective_gradient, zero_point
from ..core.heatmaps import overlay, upsample
from ..core.images import ImageLike, as_image, fit_size, from_pil, to_pil
from ..core.memory import check_request
from ..core.model import INPUT, LOGITS, FeatureModel, split_view
from ..core.objectives import Objective
from ..core.results import Result
from ..core.targets import parse_target
from ..core.visualize import visualize
from ..zoo import as_model

#: Pixel attribution methods, in panel order.
METHODS = ("gradient", "grad_x_input", "integrated_gradients")
#: Integrated gradients' baselines: the preprocessing's zero point, or a black image.
BASELINES = ("zero", "black")
#: Integrated-gradients steps (midpoint rule; the paper finds 20-300 enough for completeness).
DEFAULT_STEPS = 32
DEFAULT_TOP = 8
#: SmoothGrad noise, as a fraction of the [0, 1] range (the paper's 10-20 %).
DEFAULT_NOISE = 0.15
#: Feature visualizations of the top channels: small and fast by default.
VIS_SIZE = 96
VIS_STEPS = 128
#: Deletion / insertion: pixels are removed or added in this many equal steps.
CURVE_STEPS = 32
#: Deletion removes squares of this many pixels a side (Samek et al. 2017's region perturbation):
#: maps of any resolution and the random baseline then change the image in pieces of one size.
PATCH = 8
#: What deleted pixels become: a blurred copy of the photo (RISE's insertion start) or its mean colour.
REPLACEMENTS = ("blur", "mean")
#: The map faithfulness compares every method against: uniform random scores per pixel.
RANDOM = "random"
#: The other baseline: the plain input gradient's magnitude at the photo (never SmoothGrad-averaged).
RAW = "raw_gradient"
#: ``(layer, channel) -> 3×s×s image or None``: visualizations already made (a catalog's).
ChannelLookup = Callable[[str, int], "torch.Tensor | None"]


@dataclass
class Curves:
    """Deletion and insertion curves of one map: the objective, normalized so the photo is 1
    and the fully replaced image 0 (``(f - f_replaced) / (f_photo - f_replaced)``), after each
    fraction of the pixels is replaced (deletion) or restored (insertion). Defined only for an
    objective the photo raises above its replaced copy (otherwise a ``FeaturevisError``)."""

    method: str
    fractions: torch.Tensor
    deletion: torch.Tensor
    insertion: torch.Tensor
    replace: str

    @property
    def deletion_auc(self) -> float:
        """Area under the deletion curve: lower means the map found what the objective needs."""
        return float(torch.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        """Area under the insertion curve: higher means the map found what the objective needs."""
        return float(torch.trapezoid(self.insertion, self.fractions))


@dataclass
class AttributionResult(Result):
    """What drives ``target`` on ``photo``: pixel maps, per-layer maps and ranked channels."""

    photo: torch.Tensor  # 1×3×H×W in [0, 1] at the working size
    target: str  # the objective, as it was named (e.g. "class:285 (Egyptian cat)", "_blocks.8:12")
    value: float  # the objective on the photo
    pixel_maps: dict[str, torch.Tensor]  # method -> H×W; gradient: |g| summed over colour, others signed sums
    layer_maps: dict[str, torch.Tensor]  # layer -> h×w Grad-CAM: ReLU(sum over channels of gradient × activation)
    top_channels: dict[str, list[tuple[int, float]]]  # layer -> [(channel, gradient × activation)], best first
    channel_images: dict[str, torch.Tensor]  # layer -> K×3×s×s feature visualizations of top_channels
    channel_scores: dict[str, torch.Tensor]  # layer -> C: every channel's gradient × activation
    layer_signed: dict[str, torch.Tensor]  # layer -> h×w: the per-position sum before the ReLU
    baseline: str  # integrated gradients' baseline: "zero" (the preprocessing's zero point) or "black"
    baseline_value: float  # the objective on that baseline (IG's attributions sum to value - this)
    raw_gradient: torch.Tensor  # H×W: |d objective / d pixel| summed over colour, at the photo itself
    model: FeatureModel = field(repr=False, compare=False)
    objective: Objective = field(repr=False, compare=False)
    _curves: dict = field(default_factory=dict, repr=False, compare=False)

    # -- faithfulness ------------------------------------------------------------------------
    def ranking_map(self, method: str) -> torch.Tensor:
        """The ``H×W`` scores deletion and insertion order pixels by: a pixel method's map, a
        layer's Grad-CAM (``LAYER`` or ``gradcam:LAYER``, signed sum resized to the photo),
        ``"raw_gradient"`` or ``"random"`` (uniform scores from the result's seed)."""
        hw = tuple(self.photo.shape[-2:])
        if method in self.pixel_maps:
            return self.pixel_maps[method]
        if method == RAW:
            return self.raw_gradient
        layer = method.removeprefix("gradcam:")
        if layer in self.layer_signed:
            return upsample(self.layer_signed[layer], hw)
        if method == RANDOM:
            g = torch.Generator().manual_seed(self.settings.get("seed", 0))
            return torch.rand(hw, generator=g)
        names = [*self.pixel_maps, *(f"gradcam:{n}" for n in self.layer_maps), RAW, RANDOM]
        raise FeaturevisError(f"no map {method!r} in this result: choose from {', '.join(names)}")

    def curves(
        self, method: str, *, steps: int = CURVE_STEPS, replace: str = "mean", patch: int = PATCH, batch: int = 16
    ) -> Curves:
        """Deletion and insertion curves of ``method``'s map (cached), evaluated in batches
        without gradients."""
        if replace not in REPLACEMENTS:
            raise FeaturevisError(f"unknown replacement {replace!r}: choose from {', '.join(REPLACEMENTS)}")
        if steps < 1 or batch < 1 or patch < 1:
            raise FeaturevisError("curve steps, patch and batch must be at least 1")
        key = (method, steps, replace, patch)
        if key not in self._curves:
            self._curves[key] = self._measure(method, steps, replace, batch, patch)
        return self._curves[key]

    def deletion_auc(self, method: str, **kw) -> float:
        """Area under ``method``'s deletion curve (lower is more faithful)."""
        return self.curves(method, **kw).deletion_auc

    def insertion_auc(self, method: str, **kw) -> float:
        """Area under ``method``'s insertion curve (higher is more faithful)."""
        return self.curves(method, **kw).insertion_auc

    def faithfulness(self, methods: Sequence[str] | None = None, **kw) -> dict[str, Curves]:
        """Curves of every map (default: each pixel method, each layer's Grad-CAM, the raw
        gradient, unless ``"gradient"`` is already it, and the random baseline)."""
        if methods is None:
            methods = [*self.pixel_maps, *(f"gradcam:{n}" for n in self.layer_maps)]
            if "gradient" not in self.pixel_maps or self.settings.get("smooth"):
                methods.append(RAW)
            methods.append(RANDOM)
        return {m: self.curves(m, **kw) for m in methods}

    def _measure(self, method: str, steps: int, replace: str, batch: int, patch: int) -> Curves:
        fm, dev = self.model, self.model.device
        x = self.photo.to(dev)
        h, w = x.shape[-2:]
        check_request(fm, batch, h, w, grad=False, copies=3, what=f"deletion curves at {w}x{h} px", device=dev)
        ref = _replacement(x, replace)
        # Squares of patch×patch pixels ranked by their mean score (patch 1: single pixels).
        cells = F.avg_pool2d(self.ranking_map(method).float()[None, None], patch, ceil_mode=True)[0, 0]
        if method == RANDOM:
            g = torch.Generator().manual_seed(self.settings.get("seed", 0))
            cells = torch.rand(cells.shape, generator=g)
        order = torch.argsort(cells.flatten(), descending=True, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order))
        rank = rank.view(1, 1, *cells.shape).repeat_interleave(patch, 2).repeat_interleave(patch, 3)
        rank = rank[..., :h, :w].to(dev)
        n = cells.numel()
        fractions = torch.linspace(0, 1, steps + 1)
        counts = (fractions * n).round().long().tolist()

        def evaluate(deleting: bool) -> torch.Tensor:
            out = []
            for i in range(0, len(counts), batch):
                masks = torch.stack([rank < c for c in counts[i : i + batch]]).view(-1, 1, h, w)
                xs = torch.where(masks, ref, x) if deleting else torch.where(masks, x, ref)
                out.append(_values(fm, self.objective, xs))
            return torch.cat(out).cpu()

        deletion, insertion = evaluate(True), evaluate(False)
        top, bottom = float(deletion[0]), float(deletion[-1])  # the photo, and the photo replaced
        if top - bottom <= 1e-3 * max(1.0, abs(top)):
            raise FeaturevisError(
                f"{self.target} is {top:.4g} on the photo and {bottom:.4g} on its {replace} copy: the photo's "
                "content does not raise it, so deleting that content measures nothing (try another replace= or target)"
            )
        scale = top - bottom
        return Curves(method, fractions, (deletion - bottom) / scale, (insertion - bottom) / scale, replace)

    # -- the picture -------------------------------------------------------------------------
    def overlay(self, method: str, alpha: float = 0.6) -> torch.Tensor:
        """A pixel map (its positive part) or a layer's Grad-CAM in colour over the grey photo."""
        if method in self.pixel_maps:
            heat = self.pixel_maps[method].clamp_min(0)
        elif method.removeprefix("gradcam:") in self.layer_maps:
            heat = self.layer_maps[method.removeprefix("gradcam:")]
        else:
            raise FeaturevisError(f"no map {method!r} in this result")
        return overlay(self.photo, heat, alpha)

    @property
    def image(self) -> torch.Tensor:
        """The photo, each pixel map and each layer's Grad-CAM in a row; under it, each layer's
        top channels (feature visualizations) with their gradient × activation."""
        row = [(self.photo, f"{self.target} = {self.value:.3g}")]
        smooth = f"SmoothGrad {self.settings['smooth']}x " if self.settings.get("smooth") else ""
        row += [(self.overlay(m), smooth + _LABELS.get(m, m)) for m in self.pixel_maps]
        row += [(self.overlay(f"gradcam:{n}"), f"Grad-CAM {n}") for n in self.layer_maps]
        rows = [_strip(row, caption_above=True)]
        for layer, images in self.channel_images.items():
            tiles = [
                (img[None], f"{c}: {s:+.3g}") for img, (c, s) in zip(images, self.top_channels[layer], strict=True)
            ]
            rows.append(_strip(tiles, title=f"top channels of {layer} by gradient x activation"))
        width = max(r.width for r in rows)
        canvas = Image.new("RGB", (width, sum(r.height for r in rows) + 6 * (len(rows) - 1)), "white")
        top = 0
        for r in rows:
            canvas.paste(r, (0, top))
            top += r.height + 6
        return from_pil(canvas)[0]

    def __repr__(self) -> str:
        h, w = self.photo.shape[-2:]
        return f"AttributionResult({self.target} = {self.value:.4g}, {w}x{h}, layers {list(self.layer_maps)})"


_LABELS = {"gradient": "|gradient|", "grad_x_input": "gradient x input", "integrated_gradients": "integrated gradients"}


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow before 10.1: one bitmap size
        return ImageFont.load_default()


def _strip(
    tiles: Sequence[tuple[torch.Tensor, str]], *, caption_above: bool = False, title: str | None = None
) -> Image.Image:
    """Tiles side by side with a caption each (above or below), under an optional title line."""
    font, pad, line = _font(), 2, 14
    ims = [to_pil(t[0]) for t, _ in tiles]
    width = sum(i.width for i in ims) + pad * (len(ims) - 1)
    height = max(i.height for i in ims)
    head = line if title else 0
    canvas = Image.new("RGB", (max(width, 1), head + height + line), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((0, 0), title, fill="black", font=font)
    x = 0
    for im, (_, caption) in zip(ims, tiles, strict=True):
        y = head + (line if caption_above else 0)
        canvas.paste(im, (x, y))
        draw.text(
            (x + 1, head if caption_above else y + im.height + 1),
            _fit(draw, caption, font, im.width),
            fill="black",
            font=font,
        )
        x += im.width + pad
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width - 2:
        return text
    while text and draw.textlength(text + "...", font=font) > width - 2:
        text = text[:-1]
    return text + "..."


def _values(model: FeatureModel, objective: Objective, x: torch.Tensor) -> torch.Tensor:
    """The objective of each image of ``x``, without gradients."""
    with torch.no_grad():
        acts = model(x, objective.layers)
        return objective({k: v.float() for k, v in acts.items()}).float()


def _replacement(x: torch.Tensor, replace: str) -> torch.Tensor:
    """What deleted pixels become: a Gaussian blur (sigma 1/16 of the longest side, edges
    replicated) that keeps the colours and removes the shapes, or the photo's mean colour."""
    if replace == "mean":
        return x.mean((2, 3), keepdim=True).expand_as(x)
    sigma = max(x.shape[-2:]) / 16
    radius = min(int(3 * sigma), min(x.shape[-2:]) - 1)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


# -- choosing the objective and the layers -----------------------------------------------------
def _objective(model: FeatureModel, target: int | str | Objective | None, photo: torch.Tensor) -> tuple[Objective, str]:
    """The objective to explain and its name (a class is named with its label)."""
    if isinstance(target, Objective):
        return target, target.name
    if target is None or isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit()):
        cls = int(model.predict(photo)[0].argmax()) if target is None else model.class_index(int(target))
        return O.class_logit(cls), f"class:{cls} ({model.class_name(cls)})"
    if not isinstance(target, str):
        raise FeaturevisError(
            f"target must be a TARGET string, a class index or an Objective, not {type(target).__name__}"
        )
    objective = parse_target(model, target)
    name = target.strip()
    if name.startswith("class:") and "+" not in name:
        cls = model.class_index(name[len("class:") :].strip().strip("\"'"))
        name = f"class:{cls} ({model.class_name(cls)})"
    return objective, name


def _top_level(model: FeatureModel) -> list[str]:
    """The model's top-level spatial layers in execution order (as ``depth_layers`` picks them)."""
    return [
        i.name for i in model.layers() if i.name.count(".") <= 1 and i.spatial and i.kind not in ("Identity", "Dropout")
    ]


def default_layers(model: FeatureModel, objective: Objective) -> list[str]:
    """The layer to attribute to when none is given: the model's default layer for an output
    objective (a class), else the top-level layer just before the first one the objective reads
    (the block that feeds it)."""
    reads = [split_view(n)[0] for n in objective.layers if n not in (LOGITS, INPUT)]
    order = [i.name for i in model.layers()]
    if not reads:
        return [model.default_layer] if model.default_layer else _top_level(model)[-1:]
    first = min(order.index(n) for n in reads if n in order)
    before = [n for n in _top_level(model) if order.index(n) < first]
    if not before:
        raise FeaturevisError(f"no layer runs before {', '.join(sorted(reads))}: give the layers to attribute to")
    return before[-1:]


def check_layers(model: FeatureModel, layers: str | Sequence[str]) -> list[str]:
    """Validated layer names (``"a,b"`` or a list), each a map of channels over positions."""
    names = [n.strip() for n in layers.split(",")] if isinstance(layers, str) else [str(n) for n in layers]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise FeaturevisError("no layer given")
    for name in names:
        model.check_layer(name)
        shape = model.layer_shape(name) if name != INPUT else ()
        if name in (INPUT, LOGITS) or len(shape) != 3 or not model.layout(name).readable:
            hint = f"; e.g. {model.default_layer}" if model.default_layer else ""
            raise FeaturevisError(
                f"layer {name!r} has no spatial map (shape {tuple(shape) or 'the input'}): Grad-CAM and channel "
                f"attribution need channels over positions{hint}"
            )
    return names


# -- the recipe ----------------------------------------------------------------------------------
def attribute(
    model: str | torch.nn.Module | FeatureModel,
    photo: ImageLike,
    target: int | str | Objective | None = None,
    *,
    layers: str | Sequence[str] | None = None,
    methods: Sequence[str] = METHODS,
    smooth: int = 0,
    top: int = DEFAULT_TOP,
    steps: int = DEFAULT_STEPS,
    size: int | None = None,
    baseline: str = "zero",
    noise: float = DEFAULT_NOISE,
    vis_size: int = VIS_SIZE,
    vis_steps: int = VIS_STEPS,
    channel_lookup: ChannelLookup | None = None,
    batch: int = 16,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> AttributionResult:
    """Which pixels, places and hidden channels of ``layers`` drive ``target`` on ``photo``.

    Args:
        target: a TARGET string (``class:285``, ``_blocks.8:12``, ``0.5*A-B``), a class index, an
            :class:`Objective`, or ``None`` for the model's top class.
        layers: layers for Grad-CAM maps and channel ranking (default: :func:`default_layers`).
        methods: pixel methods, from :data:`METHODS`.
        smooth: SmoothGrad: average each pixel method over this many noisy copies (0: off).
        top: channels ranked per layer and visualized.
        steps: integrated-gradients steps (batched ``batch`` at a time).
        size: longest side to work at (default: the model's input size; never enlarged).
        baseline: integrated gradients' start, ``"zero"`` (the preprocessing's zero point) or ``"black"``.
        vis_size, vis_steps: the top channels' feature visualizations (``vis_steps=0``: none).
        channel_lookup: ``(layer, channel) -> image or None``: visualizations made before (a
            catalog's); only the channels it lacks are rendered, in one batch per layer.
    Returns:
        An :class:`AttributionResult`; ``r.faithfulness()`` measures its maps. Ctrl-C during
        SmoothGrad keeps the samples done; during the visualizations, the images so far
        (``interrupted`` is set either way).
    """
    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in METHODS:
            raise FeaturevisError(f"unknown attribution method {m!r}: choose from {', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise FeaturevisError(f"unknown baseline {baseline!r}: choose from {', '.join(BASELINES)}")
    for name, v, low in (("smooth", smooth, 0), ("top", top, 1), ("steps", steps, 1), ("batch", batch, 1)):
        if not isinstance(v, int) or v < low:
            raise FeaturevisError(f"{name} must be an integer >= {low}, not {v!r}")
    if vis_steps < 0 or vis_size < 16:
        raise FeaturevisError("vis_steps must be >= 0 and vis_size at least 16 px")
    if not 0 <= noise < 1:
        raise FeaturevisError(f"noise must be in [0, 1), not {noise}")
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    x = fit_size(as_image(photo, "photo"), size or fm.input_size, enlarge=False).to(dev)
    h, w = x.shape[-2:]
    objective, name = _objective(fm, target, x)
    layer_names = check_layers(fm, layers if layers is not None else default_layers(fm, objective))
    validate(fm, objective, (h, w), batch)  # layers, channels and memory, before any work
    _check_neurons(objective, (h, w))
    for layer in layer_names:
        channels = fm.layer_shape(layer)[0]
        if top > channels:
            raise FeaturevisError(f"top {top} is more than the {channels} channels of {layer}")

    values, grad, hidden = objective_gradient(fm, objective, x, tuple(layer_names))
    for layer, (_, g) in hidden.items():
        if g is None:
            raise FeaturevisError(
                f"{name} does not depend on {layer}: it runs after every layer the target reads; pick an earlier layer"
            )
    base = zero_point(fm, x).expand_as(x) if baseline == "zero" else torch.zeros_like(x)
    g = torch.Generator().manual_seed(seed)
    interrupted = False

    def pixel(method: str, xs: torch.Tensor) -> torch.Tensor:
        """The summed 3-channel attributions of the images ``xs`` (SmoothGrad's copies)."""
        if method == "integrated_gradients":
            return sum(_integrated_gradients(fm, objective, xi[None], base, steps, batch) for xi in xs)
        gx = objective_gradient(fm, objective, xs)[1]
        return (gx if method == "gradient" else gx * (xs - zero_point(fm, xs))).sum(0, keepdim=True)

    pixel_maps, smoothed = {}, smooth
    for m in methods:
        if smooth:
            attr, done, cut = noisy_mean(
                lambda xs, m=m: pixel(m, xs),
                x,
                smooth,
                noise,
                batch=1 if m == "integrated_gradients" else batch,
                generator=g,
                progress=progress,
                description=f"SmoothGrad {m}",
            )
            interrupted |= cut
            smoothed = min(smoothed, done)
        else:
            attr = grad if m == "gradient" else pixel(m, x)
        pixel_maps[m] = (attr[0].abs().sum(0) if m == "gradient" else attr[0].sum(0)).cpu()

    layer_maps, layer_signed, scores, top_channels = {}, {}, {}, {}
    for layer, (a, ga) in hidden.items():
        contrib = (a * ga)[0]  # C×h×w: first-order contribution of each channel at each place
        scores[layer] = contrib.sum((1, 2)).cpu()
        layer_signed[layer] = contrib.sum(0).cpu()
        layer_maps[layer] = layer_signed[layer].clamp_min(0)
        best = scores[layer].topk(top)
        top_channels[layer] = [(int(c), float(s)) for s, c in zip(best.values, best.indices, strict=True)]

    channel_images = {}
    if vis_steps or channel_lookup is not None:
        for layer, ranked in top_channels.items():
            images, cut = _channel_images(
                fm, layer, [c for c, _ in ranked], channel_lookup, vis_size, vis_steps, seed, progress
            )
            if images is not None:
                channel_images[layer] = images
            if cut:
                interrupted = True
                break
    return AttributionResult(
        photo=x.cpu(),
        target=name,
        value=float(values[0]),
        pixel_maps=pixel_maps,
        layer_maps=layer_maps,
        top_channels=top_channels,
        channel_images=channel_images,
        channel_scores=scores,
        layer_signed=layer_signed,
        baseline=baseline,
        baseline_value=float(_values(fm, objective, base[:1])[0]),
        raw_gradient=grad[0].abs().sum(0).cpu(),
        model=fm,
        objective=objective,
        settings=dict(
            model=fm.name,
            size=(h, w),
            layers=layer_names,
            methods=methods,
            smooth=smoothed,  # the noisy copies averaged (fewer after Ctrl-C)
            noise=noise,
            steps=steps,
            top=top,
            baseline=baseline,
            vis_size=vis_size,
            vis_steps=vis_steps,
            seed=seed,
        ),
        interrupted=interrupted,
    )


def _check_neurons(objective: Objective, hw: tuple[int, int]) -> None:
    """Neuron positions inside their layer's map at this photo's size: ``validate`` checks them
    on the square map of the longest side, which a landscape or portrait photo does not fill."""
    grids = {g.layer: g.hw for g in objective.grids if g.hw is not None}
    for layer, _, *position in objective.checks:
        if not position or layer not in grids:
            continue
        (x, y), (map_h, map_w) = position[0], grids[layer]
        if not (0 <= x < map_w and 0 <= y < map_h):
            raise FeaturevisError(
                f"neuron position @{x},{y} is outside {layer}'s {map_w}x{map_h} map for this {hw[1]}x{hw[0]} photo: "
                f"x 0..{map_w - 1}, y 0..{map_h - 1}"
            )


def _integrated_gradients(
    model: FeatureModel, objective: Objective, x: torch.Tensor, base: torch.Tensor, steps: int, batch: int
) -> torch.Tensor:
    """``(x - base)`` times the mean gradient at ``steps`` midpoints of the path from ``base``
    to ``x``, evaluated ``batch`` points at a time: the attributions sum to about
    ``f(x) - f(base)`` (the midpoint rule's error shrinks as 1/steps²)."""
    alphas = (torch.arange(steps, dtype=torch.float32, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    for i in range(0, steps, batch):
        a = alphas[i : i + batch].view(-1, 1, 1, 1)
        points = base + a * (x - base)
        total += objective_gradient(model, objective, points)[1].sum(0, keepdim=True)
    return (x - base) * total / steps


def _channel_images(
    model: FeatureModel,
    layer: str,
    channels: list[int],
    lookup: ChannelLookup | None,
    size: int,
    steps: int,
    seed: int,
    progress: bool,
) -> tuple[torch.Tensor | None, bool]:
    """Visualizations of ``channels``: the lookup's where it has them, the rest rendered in one
    batch (``core.visualize``). Returns ``(K×3×size×size or None, interrupted)``."""
    found: dict[int, torch.Tensor] = {}
    if lookup is not None:
        for c in channels:
            img = lookup(layer, c)
            if img is not None:
                img = as_image(img, f"catalog image of {layer}:{c}")
                found[c] = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[
                    0
                ]
    missing = [c for c in channels if c not in found]
    interrupted = False
    if missing:
        if not steps:  # nothing to render with: no row of images rather than a partial one
            return None, False
        r = visualize(
            model,
            O.channels(layer, missing),
            batch=len(missing),
            size=size,
            steps=steps,
            seed=seed,
            progress=progress,
            description=f"top channels of {layer}",
        )
        found.update({c: img for c, img in zip(missing, r.images, strict=True)})
        interrupted = r.interrupted
    return torch.stack([found[c].cpu() for c in channels]), interrupted
