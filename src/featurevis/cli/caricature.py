"""``featurevis caricature``: a strip of the photo and one caricature per layer (Lucid's recipe)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.images import load_image
from ..recipes.caricature import DEFAULT_COSSIM_POW, DEFAULT_STEPS, INITS, caricature
from .args import add_common, add_lr, add_model, add_output, add_size, add_steps, model_from_args, non_negative_float


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to caricature")
    add_model(p)
    p.add_argument(
        "-l", "--layers", default=None, help="LAYER[,LAYER...]: one caricature each (default: the model's layer)"
    )
    p.add_argument("--init", choices=INITS, default="noise", help="start from noise (default) or from the photo")
    p.add_argument(
        "--cossim-pow",
        type=non_negative_float,
        default=DEFAULT_COSSIM_POW,
        metavar="P",
        help="objective dot x cosine^P with the photo's activations (default %(default)s; 0: plain dot)",
    )
    add_output(p, "strip image (default PHOTO-caricature.png)", lambda args: f"{Path(args.photo).stem}-caricature.png")
    add_size(p, "longest side to work at, px (default: the model's input size)", square=False)
    add_steps(p, "optimization steps (default %(default)s)", DEFAULT_STEPS)
    add_lr(p, "Adam learning rate (default: the Fourier parameterization's)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    photo = load_image(args.photo)
    model = model_from_args(args)
    r = caricature(
        model,
        photo,
        args.layers,
        init=args.init,
        cossim_pow=args.cossim_pow,
        size=args.size,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    r.save(args.output)
    for name, a, b in zip(r.layers, r.cosine_start, r.cosine, strict=True):
        print(f"{name:<14} cosine to the photo's activations {a:.3f} -> {b:.3f}")
    note = " (interrupted)" if r.interrupted else ""
    print(f"wrote {args.output}: photo, then {', '.join(r.layers)}{note}")
    return 130 if r.interrupted else 0
