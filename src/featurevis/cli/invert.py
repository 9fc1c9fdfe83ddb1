"""The `invert` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import check_writable, load_image, save_image
from ..recipes.invert import DEFAULT_SIZE, depth_layers, invert, invert_depths, parse_layers, strip
from ..zoo import DEFAULT_MODEL
from .args import _positive, _positive_float, add_common, command, model_from_args


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
