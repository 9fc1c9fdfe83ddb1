"""The `prior_train` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import check_writable
from ..core.photos import load_folder
from ..recipes.prior_train import train_prior
from .args import _positive, _positive_float, add_common, command, model_from_args


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model whose layer the generator inverts")
    p.add_argument("--layer", required=True, help="the code layer, e.g. _avg_pooling")
    p.add_argument("--images", default=None, help="folder of training photos (default: scikit-image samples)")
    p.add_argument("--steps", type=_positive, default=300, help="total training steps (default 300)")
    p.add_argument("--out", default=None, help="generator / checkpoint file (default prior-MODEL-LAYER.pt)")
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    p.add_argument("--batch", type=_positive, default=4, help="crops per step (default 4)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--width", type=_positive, default=64, help="generator width (default 64)")
    p.add_argument("--size", type=_positive, default=None, help="image side in px (default: the model's)")
    p.add_argument("--feature-layer", default=None, help="layer of the feature loss (default: a middle one)")
    p.add_argument("--adversarial", type=float, default=0.0, help="weight of the adversarial term (default 0)")
    p.add_argument("--checkpoint-every", type=_positive, default=50, help="steps between checkpoints (default 50)")
    add_common(p)


@command("prior-train", "train a generator prior that inverts a layer of your model (for --prior dgn)", _args)
def run_prior_train(args: argparse.Namespace) -> int:

    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in args.layer)
    out = Path(args.out or f"prior-{args.model}-{safe}.pt")
    if out.suffix.lower() not in (".pt", ".pth"):
        raise FeaturevisError(f"{out}: a generator file must end in .pt or .pth")
    if args.resume and not out.exists():
        raise FeaturevisError(f"{out}: no checkpoint to resume from")
    check_writable(out.with_suffix(".png"))
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
        progress=not args.quiet,
    )
    ev = gen.meta["eval"]
    note = " (interrupted)" if gen.meta.get("interrupted") else ""
    print(
        f"wrote {out}{note}: {gen.meta['steps']} steps in {gen.meta['seconds']:.0f} s; held-out reconstruction "
        f"pixel MSE {ev[0][1]:.4f} -> {ev[-1][1]:.4f}, feature error {ev[0][2]:.3f} -> {ev[-1][2]:.3f}"
    )
    return 130 if gen.meta.get("interrupted") else 0
