"""``featurevis saliency``: a panel of input-gradient views of why the network sees a class."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.images import load_image, save_image
from ..recipes.saliency import DEFAULT_NOISE, DEFAULT_SAMPLES, DEFAULT_SIZE, saliency, signed_image
from .args import add_common, add_model, add_output, add_size, model_from_args, non_negative_float, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to explain")
    add_model(p)
    p.add_argument("-t", "--target", default=None, help="class (index or name); default: the top prediction")
    p.add_argument(
        "--samples", type=positive_int, default=DEFAULT_SAMPLES, help="SmoothGrad samples (default %(default)s)"
    )
    p.add_argument(
        "--noise",
        type=non_negative_float,
        default=DEFAULT_NOISE,
        help="SmoothGrad noise, fraction of range (default %(default)s)",
    )
    add_size(p, "longest side in px (default %(default)s; 0: the photo's own)", DEFAULT_SIZE, zero=True, square=False)
    add_output(p, "panel image (default PHOTO-saliency.png)", lambda args: f"{Path(args.photo).stem}-saliency.png")
    p.add_argument("--separate", action="store_true", help="also write each view as its own image")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    out = args.output
    photo = load_image(args.photo)
    model = model_from_args(args)
    r = saliency(
        model,
        photo,
        args.target,
        size=args.size or None,
        samples=args.samples,
        noise=args.noise,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    r.save(out)
    written = [out]
    if args.separate:
        views = {
            "gradient": signed_image(r.gradient),
            "preconditioned": signed_image(r.preconditioned),
            "smoothgrad": r.overlay("smoothgrad"),
            "grad_x_input": r.overlay("grad_x_input"),
        }
        for name, img in views.items():
            written.append(save_image(img, out.with_name(f"{out.stem}-{name}.png")))
    print(f"class {r.target} {r.target_name} ({r.probability:.1%})")
    panels = "photo | gradient | preconditioned | SmoothGrad | gradient×input"
    note = f" (interrupted: SmoothGrad over {r.settings['samples']} samples)" if r.interrupted else ""
    print(f"wrote {', '.join(map(str, written))}: {panels}{note}")
    return 130 if r.interrupted else 0
