"""``featurevis accentuate``: raise a target in a photo, staying near it (Hamblin et al. 2024)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.images import load_image, save_image
from ..recipes.accentuate import DEFAULT_REG, DEFAULT_STEPS, accentuate
from .args import add_common, add_lr, add_model, add_output, add_size, add_steps, model_from_args, non_negative_float


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to accentuate")
    p.add_argument("target", help="TARGET to raise: _blocks.8:12, _blocks.8:12@3,4, class:285, _blocks.8:random=7")
    add_model(p)
    p.add_argument(
        "--reg",
        type=non_negative_float,
        default=DEFAULT_REG,
        metavar="W",
        help="pull toward the photo in the parameterization (default %(default)s; more: closer, higher SSIM)",
    )
    add_output(
        p,
        "panel: photo | accentuation | change map (default PHOTO-accentuate.png); the image alone goes "
        "to OUTPUT-image.png",
        lambda args: f"{Path(args.photo).stem}-accentuate.png",
    )
    add_size(p, "longest side to work at, px (default: the model's input size)", square=False)
    add_steps(p, "optimization steps (default %(default)s)", DEFAULT_STEPS)
    add_lr(p, "Adam learning rate (default: the Fourier parameterization's)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    out = args.output
    image_out = out.with_name(f"{out.stem}-image.png")  # PNG: the 8-bit image the figures were measured on
    photo = load_image(args.photo)
    model = model_from_args(args)
    r = accentuate(
        model,
        photo,
        args.target,
        reg=args.reg,
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    r.save(out)
    save_image(r.image, image_out)
    rise = r.target_end - r.target_start
    print(f"{r.target}: {r.target_start:.4g} -> {r.target_end:.4g} ({rise:+.4g}); SSIM to the photo {r.ssim:.3f}")
    note = " (interrupted)" if r.interrupted else ""
    print(f"wrote {out} (photo | accentuation | change map) and {image_out}{note}")
    return 130 if r.interrupted else 0
