"""The `saliency` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.images import check_writable, load_image, save_image
from ..recipes.saliency import DEFAULT_NOISE, DEFAULT_SAMPLES, DEFAULT_SIZE, saliency, signed_image
from ..zoo import DEFAULT_MODEL
from .args import _non_negative, _positive, add_common, command, model_from_args


def _saliency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to explain")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument("-t", "--target", default=None, help="class (index or name); default: the top prediction")
    p.add_argument("--samples", type=_positive, default=DEFAULT_SAMPLES, help="SmoothGrad samples (default 32)")
    p.add_argument("--noise", type=float, default=DEFAULT_NOISE, help="SmoothGrad noise, fraction of range (0.15)")
    p.add_argument("--size", type=_non_negative, default=DEFAULT_SIZE, help="longest side in px (0: the photo's own)")
    p.add_argument("-o", "--output", default=None, help="panel image (default PHOTO-saliency.png)")
    p.add_argument("--separate", action="store_true", help="also write each view as its own image")
    add_common(p)


@command("saliency", "raw and preconditioned input gradients, SmoothGrad and gradient×input", _saliency_args)
def run_saliency(args: argparse.Namespace) -> int:
    photo_path = Path(args.photo)
    out = Path(args.output) if args.output else Path(f"{photo_path.stem}-saliency.png")
    check_writable(out)
    photo = load_image(photo_path)
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
    print(f"wrote {', '.join(map(str, written))}: photo | gradient | preconditioned | SmoothGrad | gradient×input")
    return 0
