"""DeepDream: amplify what a layer already detects in a photo, so faint patterns become visible.

Gradient ascent on the user's own photo (Mordvintsev et al. 2015), the classic recipe:

- **octaves**: dream at a few scales from small to full size; the *detail* added at one scale is
  carried up to the next, so patterns grow at every size, not only the network's favourite one;
- **jitter**: the image is rolled by a random offset each step (wrapping around), so no pattern
  locks onto the network's stride grid and tile seams never sit in one place;
- **normalized steps** (:class:`~featurevis.core.engine.NormalizedSGD`): the gradient is divided
  by its mean absolute value, so ``step_size`` is how far the image moves per step in [0, 1]
  units whatever the layer's scale;
- **tiles**: each step's gradient is computed tile by tile (:mod:`featurevis.core.tiling`), so a
  4000x3000 photo needs no more activation memory than a 512x512 one;
- **any objective**: the default is the mean square of one layer; several layers mix with
  weights; a channel or a class makes a *controlled* dream; a **guide** image replaces the norm
  by each position's best dot product with the guide's features; a **mask** confines the dream.

Each octave is one run of :func:`~featurevis.core.engine.optimize` over the octave's photo plus
its detail, so Ctrl-C, NaN handling and autocast are the loop's, as for every other recipe.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core import objectives as O
from ..core.engine import NormalizedSGD, optimize, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.images import as_image, atomic_write, check_writable, load_image, to_pil
from ..core.memory import check_request
from ..core.model import INPUT, LOGITS, FeatureModel
from ..core.objectives import Objective
from ..core.params import PerturbedImage
from ..core.results import Result
from ..core.targets import parse_target
from ..core.tiling import TiledGradient, tiled_value
from ..zoo import as_model

#: The layer of the default model that gives the classic look (chosen by eye on sample photos).
DEFAULT_LAYER = "_blocks.10"
#: Octaves whose shorter side would fall below this many pixels are skipped.
MIN_OCTAVE_SIDE = 32
#: Guide features are pooled to at most this many positions per side (bounds the match matrix).
GUIDE_POSITIONS = 32

LayerSpec = str | Sequence[str] | Mapping[str, float] | Objective | None


@dataclass
class DreamResult(Result):
    """A dreamed photo and how it was made. Displays itself in notebooks; ``save()`` writes it."""

    image: torch.Tensor  # 1×3×H×W in [0, 1], on the CPU, the photo's own size
    objective: str
    before: float  # the objective on the original photo (full size, tiled)
    after: float  # ... and on the dream

    @property
    def gain(self) -> float:
        """How many times the objective grew (after / before); NaN unless it started positive
        (a class logit or channel can start negative, where only the difference means anything)."""
        return self.after / self.before if self.before > 0 else math.nan

    def __repr__(self) -> str:
        h, w = self.image.shape[-2:]
        note = ", interrupted" if self.interrupted else ""
        return f"DreamResult({self.objective}, {w}x{h}, {self.before:.3g} -> {self.after:.3g}{note})"


# -- what to amplify ------------------------------------------------------------------------
def _split_spec(text: str) -> list[str]:
    """Split ``a,b=0.5,c:1@3,4`` on commas outside quotes, keeping a neuron's ``@x,y`` whole."""
    parts, cur, quote = [], "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    merged: list[str] = []
    for p in parts:
        if merged and "@" in merged[-1] and "," not in merged[-1].partition("@")[2] and p.strip().isdigit():
            merged[-1] += "," + p
        else:
            merged.append(p)
    return [p.strip() for p in merged if p.strip()]


def _weighted_terms(text: str) -> list[tuple[float, str]]:
    """``TARGET[=WEIGHT]`` items; ``LAYER:random=SEED`` keeps its own ``=``."""
    terms = []
    for item in _split_spec(text):
        target, eq, weight = item.rpartition("=")
        if not eq or target.rstrip().endswith(":random") or not target:
            terms.append((1.0, item))
            continue
        try:
            w = float(weight)
        except ValueError:
            raise FeaturevisError(f"malformed layer weight {item!r}: use LAYER=WEIGHT, e.g. _blocks.6=0.5") from None
        if not math.isfinite(w):
            raise FeaturevisError(f"layer weight {item!r} is not a finite number")
        terms.append((w, target.strip()))
    return terms


def dream_terms(model: FeatureModel, layers: LayerSpec) -> list[tuple[float, Objective]]:
    """``layers`` as weighted objectives: a layer name, ``"a=1,b=0.5"``, a TARGET such as
    ``"_blocks.8:12"`` or ``"class:285"``, a list of names, a ``{name: weight}`` mapping or an
    :class:`Objective`."""
    if layers is None:
        layers = DEFAULT_LAYER if DEFAULT_LAYER in model.layer_names else (model.default_layer or _middle_layer(model))
    if isinstance(layers, Objective):
        return [(1.0, layers)]
    if isinstance(layers, str):
        terms = [(w, parse_target(model, t)) for w, t in _weighted_terms(layers)]
    elif isinstance(layers, Mapping):
        terms = [(float(w), O.layer(model.check_layer(name))) for name, w in layers.items()]
    else:
        terms = [(1.0, O.layer(model.check_layer(name))) for name in layers]
    if not terms:
        raise FeaturevisError(f"no layer in {layers!r}: use e.g. -l _blocks.6 or -l _blocks.6=1,_blocks.9=0.5")
    return terms


def _middle_layer(model: FeatureModel) -> str:
    """A default for models outside the zoo: the middle one of the top-level layers."""
    top = [n for n in model.layer_names if n.count(".") <= 1 and n.split(".")[-1].isdigit()]
    names = top or model.layer_names
    if not names:
        raise FeaturevisError(f"model {model.name} has no named layers to dream with")
    return names[len(names) // 2]


def guided(name: str, guide_features: torch.Tensor, batch: int | None = None) -> Objective:
    """Each position's best dot product with a guide's feature vectors, averaged.

    Instead of making every activation bigger, this pulls each position's features toward the
    guide feature they already resemble most, so the photo takes on what the guide shows.
    ``guide_features`` is ``C×N`` (N guide positions).
    """
    g = guide_features.detach()

    def fn(a: O.Acts) -> torch.Tensor:
        t = a[name]
        x = t.flatten(2)  # B×C×P
        if x.shape[1] != g.shape[0]:
            raise ValueError(f"guide has {g.shape[0]} channels but {name} has {x.shape[1]}")
        sim = torch.einsum("bcp,cn->bpn", x, g.to(x))
        return O._at(sim.max(-1).values.mean(1), batch)

    return Objective(fn, frozenset({name}), f"guided({name})", ((name, None),))


@torch.no_grad()
def guide_features(model: FeatureModel, guide: torch.Tensor, layer: str, max_side: int | None = None) -> torch.Tensor:
    """The guide image's ``C×N`` features at ``layer``, pooled to at most 32x32 positions."""
    max_side = max_side or 2 * model.input_size
    h, w = guide.shape[-2:]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        guide = F.interpolate(guide, size=(max(2, round(h * f)), max(2, round(w * f))), mode="bilinear", antialias=True)
    act = model(guide.to(model.device), [layer])[layer].float()
    if act.dim() != 4:
        raise FeaturevisError(f"a guided dream needs a convolutional layer; {layer} gives shape {tuple(act.shape)}")
    ph, pw = (min(GUIDE_POSITIONS, s) for s in act.shape[-2:])
    return F.adaptive_avg_pool2d(act, (ph, pw))[0].flatten(1)


def _objective(model: FeatureModel, layers: LayerSpec, guide: torch.Tensor | None) -> Objective:
    """The dream's objective: ``layers``' weighted terms, each pulled toward ``guide`` if given."""
    terms = dream_terms(model, layers)
    if guide is not None:
        guided_terms = []
        for w, obj in terms:
            names = {check[0] for check in obj.checks if check[1] is None} - {INPUT, LOGITS}
            if len(names) != 1 or obj.layers != frozenset(names):
                raise FeaturevisError(f"a guide works with whole layers (e.g. _blocks.6), not {obj.name!r}")
            (name,) = names
            guided_terms.append((w, guided(name, guide_features(model, guide, name))))
        terms = guided_terms
    return sum(w * obj if w != 1.0 else obj for w, obj in terms)  # type: ignore[return-value]


# -- inputs -------------------------------------------------------------------------------
def load_mask(x: torch.Tensor | str | os.PathLike, size: tuple[int, int]) -> torch.Tensor:
    """A ``1×1×H×W`` mask in [0, 1] at ``size``: white (1) dreams, black (0) keeps the photo."""
    if isinstance(x, (str, os.PathLike)):
        m = load_image(x).mean(1, keepdim=True)
    else:
        m = torch.as_tensor(x).detach().float()
        m = m[(None,) * (4 - m.dim())] if 2 <= m.dim() <= 4 else m
        if m.dim() != 4 or m.shape[0] != 1 or min(m.shape[-2:]) < 1:
            raise FeaturevisError(f"mask must be H×W, 1×H×W or 1×C×H×W, got {tuple(torch.as_tensor(x).shape)}")
        m = m.mean(1, keepdim=True)
    if m.min() < 0 or m.max() > 1:
        raise FeaturevisError("mask values must lie in [0, 1]")
    if tuple(m.shape[-2:]) != size:
        m = F.interpolate(m, size=size, mode="bilinear", antialias=True).clamp(0, 1)
    return m


def octave_shapes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the smallest octave to the photo's own, skipping ones too small to see."""
    shapes = []
    for i in reversed(range(octaves)):
        h, w = round(height / scale**i), round(width / scale**i)
        if i == 0 or min(h, w) >= MIN_OCTAVE_SIDE:
            shapes.append((h, w))
    return shapes


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


# -- the recipe -----------------------------------------------------------------------------
def dream(
    model: str | torch.nn.Module | FeatureModel,
    image: torch.Tensor | str | os.PathLike,
    layers: LayerSpec = None,
    *,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    tile: int = 512,
    guide: torch.Tensor | str | os.PathLike | None = None,
    mask: torch.Tensor | str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> DreamResult:
    """Dream on ``image``: make ``layers``' objective grow by normalized gradient ascent.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module (default ``efficientnet_lite0``).
        image: the photo, ``1×3×H×W`` (or ``3×H×W``) in [0, 1], or a file path.
        layers: a layer name (default: the model's classic-look layer), ``"a=1,b=0.5"``, a list,
            a ``{layer: weight}`` mapping, a TARGET (``"_blocks.8:12"``, ``"class:285"``) or any
            :class:`Objective` (a channel or class gives a *controlled* dream).
        octaves, octave_scale: how many scales, and the ratio between neighbouring ones.
        steps: gradient steps per octave; ``step_size``: mean pixel change per step in [0, 1].
        tile: largest side the network sees at once; bounds memory for any photo size.
        guide: an image whose features the dream pulls toward, instead of amplifying the layer.
        mask: ``H×W`` in [0, 1] (or an image file); 0 keeps the photo there exactly.
        on_step: called as ``on_step(done, total)`` after every gradient step (live progress).
    Returns:
        A :class:`DreamResult` at the photo's own size; Ctrl-C stops early and keeps what is done.
    """
    if octaves < 1 or steps < 0 or tile < 16 or not octave_scale >= 1 or not step_size > 0:
        raise FeaturevisError("need octaves >= 1, steps >= 0, tile >= 16, octave_scale >= 1 and step_size > 0")
    fm = as_model(model)
    if device is not None or isinstance(model, str):
        fm.to(resolve_device(device))
    dev = fm.device
    photo = as_image(image, "image", fm.channels).to(dev)
    height, width = photo.shape[-2:]
    # The photo's copies at full size, the network's activations a tile at a time.
    seen = (min(tile, height), min(tile, width))
    what = f"dreaming on a {width}x{height} photo"
    check_request(fm, 1, height, width, seen=seen, what=what, hint="use a smaller photo", device=dev)
    guide_t = as_image(guide, "guide", fm.channels).to(dev) if guide is not None else None
    obj = _objective(fm, layers, guide_t)
    validate(fm, obj, fm.input_size)
    full_mask = load_mask(mask, (height, width)).to(dev) if mask is not None else None
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    before = float(tiled_value(fm, obj, photo, tile)[0])

    shapes = octave_shapes(height, width, octaves, octave_scale)
    detail = torch.zeros(1, photo.shape[1], *shapes[0], device=dev)
    done = 0

    def count(_param: PerturbedImage) -> None:
        nonlocal done
        done += 1
        on_step(done, steps * len(shapes))  # type: ignore[misc]

    interrupted, values = False, None
    for k, (h, w) in enumerate(shapes):
        # This octave's photo plus the detail dreamed so far, kept in [0, 1] by constrain().
        param = PerturbedImage(_resize(photo, (h, w)), math.inf, init=_resize(detail, (h, w)))
        lr = step_size
        if full_mask is not None:
            m = _resize(full_mask, (h, w))
            param.delta.register_hook(lambda grad, m=m: grad * m)
            lr *= float(m.mean())  # NormalizedSGD averages over the whole image; step_size is per dreamed pixel
        r = optimize(
            fm,
            obj,
            param,
            steps=steps,
            generator=g,
            optimizer=lambda ps, lr=lr: NormalizedSGD(ps, lr=lr),
            gradient=TiledGradient(tile, generator=g),  # rolls the image under the tiles each step
            progress=progress,
            description=f"octave {k + 1}/{len(shapes)} {w}x{h}",
            after_step=count if on_step is not None else None,
        )
        detail, interrupted, values = param.delta.detach(), r.interrupted, r.values
        del r, param  # the next octave's peak memory should not hold this one's images
        if interrupted:
            break
    out = (photo + _resize(detail, (height, width))).clamp_(0, 1)
    if full_mask is not None:
        out = photo + full_mask * (out - photo)  # exactly the photo where the mask is 0
    # The last octave is the photo's size: its final objective, tiled alike, is the dream's.
    finished = values is not None and not interrupted and full_mask is None
    after = float(values[0]) if finished else float(tiled_value(fm, obj, out, tile)[0])
    settings = dict(
        model=fm.name,
        objective=obj.name,
        octaves=len(shapes),
        octave_scale=octave_scale,
        steps=steps,
        step_size=step_size,
        tile=tile,
        guided=guide is not None,
        masked=mask is not None,
        seed=seed,
    )
    return DreamResult(
        image=out.float().cpu(),
        objective=obj.name,
        before=before,
        after=after,
        settings=settings,
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
    )


def zoom_in(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Crop the centre ``1/factor`` of the image and scale it back to the same size."""
    h, w = image.shape[-2:]
    ch, cw = max(2, round(h / factor)), max(2, round(w / factor))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = image[..., y0 : y0 + ch, x0 : x0 + cw]
    return F.interpolate(crop, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def dream_zoom(
    model: str | torch.nn.Module | FeatureModel,
    image: torch.Tensor | str | os.PathLike,
    frames: int = 30,
    *,
    zoom: float = 1.05,
    layers: LayerSpec = None,
    seed: int = 0,
    on_frame: Callable[[int, torch.Tensor], None] | None = None,
    progress: bool = True,
    **dream_kwargs,
) -> list[torch.Tensor]:
    """The endless-zoom sequence: dream, zoom in by ``zoom``, dream again, ``frames`` times.

    Each frame is dreamed from the zoomed previous one, so patterns grow out of patterns.
    ``on_frame(i, frame)`` sees each frame as soon as it is done (to write it); Ctrl-C stops
    after keeping the frames so far. ``dream_kwargs`` go to :func:`dream` for every frame.
    """
    fm = as_model(model)
    current = as_image(image, "image", fm.channels)
    out: list[torch.Tensor] = []
    bar = tqdm(range(frames), desc="zoom", disable=not progress, dynamic_ncols=True)
    try:
        for i in bar:
            r = dream(fm, current, layers, seed=seed + i, progress=False, **dream_kwargs)
            out.append(r.image)
            if on_frame is not None:
                on_frame(i, r.image)
            if r.interrupted:
                break
            current = zoom_in(r.image, zoom)
    except KeyboardInterrupt:
        tqdm.write("featurevis: interrupted; keeping the frames so far")
    finally:
        bar.close()
    return out


# -- video ----------------------------------------------------------------------------------
VIDEO_SUFFIXES = (".gif", ".mp4")


def check_video_writable(path: Path) -> Path:
    """Refuse a zoom-video path before any dreaming: a suffix other than .gif/.mp4, or .mp4
    without the ``video`` extra, would otherwise fail only after every frame was computed."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise FeaturevisError(f"{path}: a zoom sequence is written as .gif or .mp4, not {path.suffix!r}")
    if path.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise FeaturevisError(
                f"{path}: writing MP4 needs imageio-ffmpeg (pip install 'featurevis[video]'); or use .gif"
            ) from None
    check_writable(path.with_suffix(".png"))  # the folder is writable
    return path


def save_video(frames: Sequence[torch.Tensor], path: str | os.PathLike, fps: float = 12.0) -> Path:
    """Write frames as an animated GIF (Pillow) or MP4 (optional imageio-ffmpeg), atomically."""
    p = check_video_writable(Path(path))
    if not frames:
        raise FeaturevisError(f"{p}: no frames to write")
    pil = [to_pil(f) for f in frames]
    with atomic_write(p) as tmp:
        if p.suffix.lower() == ".gif":
            pil[0].save(tmp, format="GIF", save_all=True, append_images=pil[1:], duration=round(1000 / fps), loop=0)
        else:
            import numpy as np
            from imageio_ffmpeg import write_frames

            w, h = pil[0].size
            writer = write_frames(tmp, (w, h), fps=fps, macro_block_size=1, quality=8, output_params=["-f", "mp4"])
            writer.send(None)
            for im in pil:
                writer.send(np.ascontiguousarray(np.asarray(im)))
            writer.close()
    return p
