"""``featurevis invert``: reconstruct a photo from one or several layers' representation, or a
strip of reconstructions from shallow to deep."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import load_image, save_image
from ..recipes.invert import DEFAULT_SIZE, depth_layers, invert, invert_depths, parse_layers, strip
from .args import add_common, add_lr, add_model, add_output, add_size, add_steps, model_from_args, non_negative_float


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo whose representation to invert")
    add_model(p)
    p.add_argument("-l", "--layers", default=None, help="LAYER[=W][,LAYER...]: matched together")
    p.add_argument("--all-layers", action="store_true", help="a strip of reconstructions, shallow to deep")
    add_output(p, "output image (default PHOTO-invert.png)", lambda args: f"{Path(args.photo).stem}-invert.png")
    add_size(p, "longest side to work at, px (default %(default)s)", DEFAULT_SIZE, square=False)
    add_steps(p, "optimization steps (default %(default)s)", 200)
    add_lr(p, "Adam learning rate (default %(default)s)", 0.05)
    p.add_argument("--tv", type=non_negative_float, default=1.0, help="total-variation weight (default 1)")
    p.add_argument(
        "--param", choices=("pixel", "fourier"), default="fourier", help="parameterization (default fourier)"
    )
    add_common(p)


def run(args: argparse.Namespace) -> int:
    if not args.layers and not args.all_layers:
        raise FeaturevisError("give -l LAYER or --all-layers")
    out = args.output
    photo = load_image(args.photo)
    model = model_from_args(args)
    kw = dict(
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        tv=args.tv,
        param=args.param,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
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
