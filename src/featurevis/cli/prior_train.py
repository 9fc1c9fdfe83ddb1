"""``featurevis prior-train``: fit a generator that inverts one layer of a model, the prior
``render --prior dgn --generator FILE`` optimizes through."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.photos import load_folder
from ..recipes.prior_train import train_prior
from .args import (
    add_batch,
    add_common,
    add_lr,
    add_model,
    add_output,
    add_size,
    add_steps,
    image_file,
    model_from_args,
    non_negative_float,
    positive_int,
    writable_file,
)


def _default_output(args: argparse.Namespace) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in args.layer)
    return f"prior-{args.model}-{safe}.pt"


def _check_output(path: Path, args: argparse.Namespace) -> None:
    if path.suffix.lower() not in (".pt", ".pth"):
        raise FeaturevisError(f"{path}: a generator file must end in .pt or .pth")
    if args.resume and not path.exists():
        raise FeaturevisError(f"{path}: no checkpoint to resume from")
    writable_file(path)
    image_file(path.with_suffix(".png"))  # the samples image, written beside it


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model(p, positional=True, what="model whose layer the generator inverts (zoo, timm:NAME, clip:ARCH[:TAG])")
    p.add_argument("--layer", required=True, help="the code layer, e.g. _avg_pooling")
    p.add_argument("--images", default=None, help="folder of training photos (default: scikit-image samples)")
    add_steps(p, "total training steps (default %(default)s)", 300)
    add_output(
        p,
        "generator / checkpoint file (default prior-MODEL-LAYER.pt)",
        _default_output,
        _check_output,
        aliases=["--out"],
    )
    p.add_argument("--resume", action="store_true", help="continue from the output file's checkpoint")
    add_batch(p, "crops per step (default %(default)s)", 4)
    add_lr(p, "Adam learning rate (default %(default)s)", 1e-3)
    p.add_argument("--width", type=positive_int, default=64, help="generator width (default 64)")
    add_size(p, "image side in px (default: the model's)")
    p.add_argument("--feature-layer", default=None, help="layer of the feature loss (default: a middle one)")
    p.add_argument(
        "--adversarial", type=non_negative_float, default=0.0, help="weight of the adversarial term (default 0)"
    )
    p.add_argument("--checkpoint-every", type=positive_int, default=50, help="steps between checkpoints (default 50)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    out = args.output
    photos = load_folder(args.images) if args.images else None
    model = model_from_args(args)
    gen = train_prior(
        model,
        args.layer,
        photos,
        out=out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        width=args.width,
        size=args.size,
        feature_layer=args.feature_layer,
        adversarial=args.adversarial,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    ev = gen.meta["eval"]
    note = " (interrupted)" if gen.meta.get("interrupted") else ""
    print(
        f"wrote {out}{note}: {gen.meta['steps']} steps in {gen.meta['seconds']:.0f} s; held-out reconstruction "
        f"pixel MSE {ev[0][1]:.4f} -> {ev[-1][1]:.4f}, feature error {ev[0][2]:.3f} -> {ev[-1][2]:.3f}"
    )
    return 130 if gen.meta.get("interrupted") else 0
