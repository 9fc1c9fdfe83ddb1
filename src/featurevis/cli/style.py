"""The `style` commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import check_writable, load_image
from ..core.losses import LITE_CONTENT_LAYER, LITE_STYLE_LAYERS
from ..recipes.style import DEFAULT_SIZE, style_transfer
from ..zoo import DEFAULT_MODEL
from .args import _positive, _positive_float, add_common, command, model_from_args


def _weights(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals or any(v < 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: weights must be >= 0")
    return vals


def _style_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", help="the photo to repaint")
    p.add_argument("style", nargs="+", help="style image(s); several are blended (see --blend)")
    p.add_argument("-o", "--output", default=None, help="output image (default CONTENT-style.png)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument("--style-weight", type=_positive_float, default=10.0, help="style vs content (default 10)")
    p.add_argument("--content-layer", default=None, help=f"content layer (default {LITE_CONTENT_LAYER}; VGG: conv4_2)")
    p.add_argument(
        "--style-layers",
        default=None,
        help=f"comma-separated (default {','.join(LITE_STYLE_LAYERS)}; VGG: conv1_1..conv5_1)",
    )
    p.add_argument("--blend", type=_weights, default=None, help="weights of several styles, e.g. 0.7,0.3")
    p.add_argument("--init", choices=("content", "noise"), default="content", help="start image (default content)")
    p.add_argument("--tv", type=float, default=0.3, help="total-variation weight (default 0.3)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--size", type=_positive, default=DEFAULT_SIZE, help=f"working side in px (default {DEFAULT_SIZE})")
    p.add_argument("--steps", type=_positive, default=300, help="optimization steps (default 300)")
    p.add_argument("--lr", type=_positive_float, default=0.2, help="Adam learning rate (default 0.2)")
    add_common(p)


@command("style", "style transfer: repaint a photo in the style of other images (Gatys et al.)", _style_args)
def run_style(args: argparse.Namespace) -> int:

    if args.tv < 0:
        raise FeaturevisError("--tv must be >= 0")
    content_path = Path(args.content)
    out = Path(args.output) if args.output else Path(f"{content_path.stem}-style.png")
    check_writable(out)
    content = load_image(content_path)
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
        progress=not args.quiet,
    )
    r.save(out)
    print(
        f"wrote {out}: style loss {r.style_before:.3g} -> {r.style_after:.3g} ({100 * r.style_drop:.1f} % lower), "
        f"content loss {r.content_after:.3g} in {r.seconds:.1f} s{' (interrupted)' if r.interrupted else ''}"
    )
    return 130 if r.interrupted else 0
