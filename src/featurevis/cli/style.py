"""``featurevis style``: Gatys style transfer, one or several (blended) styles."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import load_image
from ..core.losses import LITE_CONTENT_LAYER, LITE_STYLE_LAYERS
from ..recipes.style import DEFAULT_SIZE, style_transfer
from .args import (
    add_common,
    add_lr,
    add_model,
    add_output,
    add_size,
    add_steps,
    model_from_args,
    non_negative_float,
    positive_float,
)


def _weights(text: str) -> list[float]:
    """``0.7,0.3``: one weight >= 0 per style image."""
    try:
        weights = [non_negative_float(t) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        weights = []
    if not weights:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers >= 0, got {text!r}")
    return weights


def add_style_options(p: argparse.ArgumentParser) -> None:
    """The loss options ``style`` and ``style-train`` share."""
    p.add_argument("--style-weight", type=positive_float, default=10.0, help="style vs content (default 10)")
    p.add_argument("--content-layer", default=None, help=f"content layer (default {LITE_CONTENT_LAYER}; VGG: conv4_2)")
    p.add_argument(
        "--style-layers",
        default=None,
        help=f"comma-separated (default {','.join(LITE_STYLE_LAYERS)}; VGG: conv1_1..conv5_1)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="the photo to repaint")
    p.add_argument("style", nargs="+", help="style image(s); several are blended (see --blend)")
    add_output(p, "output image (default CONTENT-style.png)", lambda args: f"{Path(args.content).stem}-style.png")
    add_model(p)
    add_style_options(p)
    p.add_argument("--blend", type=_weights, default=None, help="weights of several styles, e.g. 0.7,0.3")
    p.add_argument("--init", choices=("content", "noise"), default="content", help="start image (default content)")
    p.add_argument("--tv", type=non_negative_float, default=0.3, help="total-variation weight (default 0.3)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    add_size(p, "longest side to work at, px (default %(default)s)", DEFAULT_SIZE, square=False)
    add_steps(p, "optimization steps (default %(default)s)", 300)
    add_lr(p, "Adam learning rate (default %(default)s)", 0.2)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    content = load_image(args.content)
    styles = [load_image(s) for s in args.style]
    if args.blend is not None and len(args.blend) != len(styles):
        raise FeaturevisError(f"--blend has {len(args.blend)} weight(s) for {len(styles)} style image(s)")
    model = model_from_args(args)
    r = style_transfer(
        model,
        content,
        styles,
        style_weights=args.blend,
        style_weight=args.style_weight,
        style_layers=args.style_layers,
        content_layer=args.content_layer,
        init=args.init,
        tv=args.tv,
        color=args.preserve_color,
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    out = args.output
    r.save(out)
    print(
        f"wrote {out}: style loss {r.style_before:.3g} -> {r.style_after:.3g} ({100 * r.style_drop:.1f} % lower), "
        f"content loss {r.content_after:.3g} in {r.seconds:.1f} s{' (interrupted)' if r.interrupted else ''}"
    )
    return 130 if r.interrupted else 0
