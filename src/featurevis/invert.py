"""Feature inversion: which image does a layer think a photo is? (Mahendran & Vedaldi 2015)

Start from noise and *minimize* the distance between the image's representation at a layer
and the photo's, under a total-variation prior; the range constraint ([0, 1]) comes from the
parameterization's squashing. What survives in the reconstruction is what the layer keeps:
shallow layers give the photo back almost exactly, deep ones keep the parts and their layout
but lose colour, texture and exact position, so the reconstruction gets fuzzier with depth.

The loss is the *relative* squared error ``||f(x) - f(x0)||² / ||f(x0)||²`` so one weight
works at every layer of every model, and the same number is the figure reported.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import objectives as O
from .commands import _positive, _positive_float, add_common, command, model_from_args
from .errors import FeaturevisError
from .images import ImageLike, ShowsImage, as_image, check_writable, fit_size, load_image, make_grid, save_image
from .model import INPUT, FeatureModel
from .objectives import Objective
from .param import Parameterization, make_param
from .render import optimize, resolve_device, validate
from .zoo import DEFAULT_MODEL, as_model

#: Default working side (longest side, px): the photo is resized to it before inverting.
DEFAULT_SIZE = 224
#: Number of layers ``--all-layers`` reconstructs, spread from shallow to deep.
DEPTH_LAYERS = 6


# -- shared helpers (also used by style transfer) -------------------------------------------
def relative_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image ``||a - b||² / ||b||²``: a distance with the same meaning at every layer."""
    num = (a - b).pow(2).flatten(1).sum(1)
    den = b.pow(2).flatten(1).sum(1).clamp_min(1e-12)
    return num / den


def depth_layers(model: FeatureModel, n: int = DEPTH_LAYERS) -> list[str]:
    """``n`` layers spread evenly from shallow to deep over the model's top-level feature maps."""
    infos = [
        i
        for i in model.layers(min(model.input_size, 128))
        if i.name.count(".") <= 1 and len(i.shape) == 3 and i.kind not in ("Identity", "Dropout")
    ]
    if not infos:
        raise FeaturevisError(f"model {model.name} has no convolutional layers to invert")
    if len(infos) <= n:
        return [i.name for i in infos]
    idx = sorted({round(k * (len(infos) - 1) / (n - 1)) for k in range(n)})
    return [infos[k].name for k in idx]


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


# -- the objective --------------------------------------------------------------------------
def match_features(targets: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None) -> Objective:
    """Minus the weighted relative squared distance to ``targets`` (``{layer: activation}``).

    Maximizing it makes the image's representation equal the targets'.
    """
    weights = dict(weights or {k: 1.0 for k in targets})

    def fn(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for name, t in targets.items():
            a = acts[name]
            total = total + weights[name] * relative_error(a, t.to(a).expand_as(a))
        return -total

    names = frozenset(targets)
    return Objective(fn, names, f"match({','.join(targets)})", tuple((n, None) for n in targets))


def _make_param(kind: str | Parameterization, hw: tuple[int, int], g: torch.Generator) -> Parameterization:
    if isinstance(kind, Parameterization):
        if tuple(kind.size) != hw or kind.batch != 1:
            raise FeaturevisError(f"parameterization makes {kind.batch}×{kind.size}, the photo needs 1×{hw}")
        return kind
    return make_param(kind, 1, hw, sd=0.5, generator=g)


@dataclass
class InversionResult(ShowsImage):
    """A reconstruction and how close it came. Displays itself in notebooks; ``save()`` writes it."""

    image: torch.Tensor  # 1×3×H×W in [0, 1], CPU, the working size
    target: torch.Tensor  # the photo at the working size
    layers: dict[str, float]
    feature_error: float  # relative squared feature error of the reconstruction (weighted sum)
    random_error: float  # ... and of a uniform random image, for scale
    psnr: float  # pixel similarity to the photo, dB
    settings: dict = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0

    def __repr__(self) -> str:
        return (
            f"InversionResult({','.join(self.layers)}: feature error {self.feature_error:.3g} "
            f"(random {self.random_error:.3g}), PSNR {self.psnr:.1f} dB)"
        )


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two [0, 1] images, in dB."""
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-10)
    return float(10 * torch.log10(1 / mse))


def _feature_error(model: FeatureModel, x: torch.Tensor, targets: dict, weights: dict) -> float:
    with torch.no_grad():
        acts = model(x, list(targets))
        return float(sum(w * relative_error(acts[n], targets[n]).item() for n, w in weights.items()))


def invert(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    layers: str | Sequence[str] | Mapping[str, float],
    *,
    size: int | None = DEFAULT_SIZE,
    steps: int = 200,
    lr: float = 0.05,
    tv: float = 1.0,
    param: str | Parameterization = "fourier",
    jitter: int = 0,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> InversionResult:
    """Reconstruct ``image`` from its representation at ``layers``, starting from noise.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any module.
        image: the photo (``1×3×H×W``/``3×H×W`` tensor in [0, 1], or a file path).
        layers: a layer, ``"a,b=0.5"``, a list or ``{layer: weight}``: all matched at once.
        size: longest side to work at (``None``: the photo's own size).
        tv: weight of the total-variation prior (the natural-image prior; more = smoother).
        param: ``"fourier"`` (default: 1/f spectrum, decorrelated colour), ``"pixel"`` or a parameterization.
        jitter: random shift in px each step (0: none); helps deep layers avoid stride artefacts.
    """
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    weights = parse_layers(fm, layers)
    photo = fit_size(as_image(image, "photo"), size).to(dev)
    hw = tuple(photo.shape[-2:])
    with torch.no_grad():
        targets = {k: v.detach() for k, v in fm(photo, list(weights)).items()}
    obj = match_features(targets, weights) - tv * O.total_variation()
    validate(fm, obj, max(hw))
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    p = _make_param(param, hw, g)
    tf = None
    if jitter:
        from . import transforms as T

        tf = T.Compose([T.Jitter(jitter)])
    result = optimize(
        fm,
        obj,
        p,
        steps=steps,
        lr=lr,
        transforms=tf,
        generator=g,
        progress=progress,
        description="invert",
        schedule="cosine",
    )
    final = result.images.to(dev)
    noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dev)
    return InversionResult(
        image=result.images,
        target=photo.cpu(),
        layers=weights,
        feature_error=_feature_error(fm, final, targets, weights),
        random_error=_feature_error(fm, noise, targets, weights),
        psnr=psnr(result.images, photo.cpu()),
        settings=dict(
            model=fm.name,
            size=hw,
            steps=steps,
            lr=lr,
            tv=tv,
            seed=seed,
            jitter=jitter,
            param=param if isinstance(param, str) else type(param).__name__,
        ),
        interrupted=result.interrupted,
        seconds=result.seconds,
    )


def invert_depths(
    model: str | torch.nn.Module | FeatureModel,
    image: ImageLike,
    layers: Sequence[str] | None = None,
    **kwargs,
) -> list[InversionResult]:
    """One reconstruction per layer, shallow to deep (default: :func:`depth_layers`)."""
    fm = as_model(model)
    names = list(layers) if layers else depth_layers(fm)
    out = []
    for name in names:
        r = invert(fm, image, name, **kwargs)
        out.append(r)
        if r.interrupted:
            break
    return out


def strip(results: Sequence[InversionResult], with_photo: bool = True) -> torch.Tensor:
    """The photo then each reconstruction in one row (``3×H×W``), shallow to deep."""
    imgs = [r.image for r in results]
    if with_photo and results:
        imgs.insert(0, results[0].target)
    return make_grid(torch.cat(imgs), ncols=len(imgs))


# -- CLI ------------------------------------------------------------------------------------
def _invert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo whose representation to invert")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument("-l", "--layers", default=None, help="LAYER[=W][,LAYER...]: matched together")
    p.add_argument("--all-layers", action="store_true", help="a strip of reconstructions, shallow to deep")
    p.add_argument("-o", "--output", default=None, help="output image (default PHOTO-invert.png)")
    p.add_argument("--size", type=_positive, default=DEFAULT_SIZE, help=f"working side in px (default {DEFAULT_SIZE})")
    p.add_argument("--steps", type=_positive, default=200, help="optimization steps (default 200)")
    p.add_argument("--lr", type=_positive_float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--tv", type=float, default=1.0, help="total-variation weight (default 1)")
    p.add_argument(
        "--param", choices=("pixel", "fourier"), default="fourier", help="parameterization (default fourier)"
    )
    add_common(p)


@command("invert", "feature inversion: reconstruct a photo from one layer's representation", _invert_args)
def run_invert(args: argparse.Namespace) -> int:

    if not args.layers and not args.all_layers:
        raise FeaturevisError("give -l LAYER or --all-layers")
    if args.tv < 0:
        raise FeaturevisError("--tv must be >= 0")
    photo_path = Path(args.photo)
    out = Path(args.output) if args.output else Path(f"{photo_path.stem}-invert.png")
    check_writable(out)
    photo = load_image(photo_path)
    model = model_from_args(args)
    kw = dict(
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        tv=args.tv,
        param=args.param,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    if args.all_layers:
        names = parse_layers(model, args.layers) if args.layers else depth_layers(model)
        results = invert_depths(model, photo, list(names), **kw)
        save_image(strip(results), out)
        for r in results:
            name = ",".join(r.layers)
            print(f"{name:<14} feature error {r.feature_error:.3f} (random {r.random_error:.3f})  PSNR {r.psnr:.1f} dB")
        print(f"wrote {out}: photo, then {', '.join(','.join(r.layers) for r in results)}")
        return 130 if results and results[-1].interrupted else 0
    r = invert(model, photo, args.layers, **kw)
    r.save(out)
    print(
        f"wrote {out}: feature error {r.feature_error:.3f} (random image {r.random_error:.3f}), "
        f"PSNR {r.psnr:.1f} dB in {r.seconds:.1f} s{' (interrupted)' if r.interrupted else ''}"
    )
    return 130 if r.interrupted else 0
