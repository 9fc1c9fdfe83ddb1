"""``featurevis fool``: an adversarial photo (FGSM/PGD), its magnified perturbation and a panel."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import load_image, save_image
from ..recipes.attack import DEFAULT_EPS, DEFAULT_SIZE, DEFAULT_STEPS, attack
from .args import add_common, add_model, add_output, add_size, add_steps, image_file, model_from_args


def parse_eps(text: str) -> float:
    """``2/255`` or ``0.008``: a positive number (a fraction reads naturally as grey levels)."""
    try:
        num, _, den = text.strip().partition("/")
        v = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or fraction like 2/255") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text!r}")
    return v


def _check_png(path: Path, args: argparse.Namespace) -> None:
    if path.suffix.lower() != ".png":
        raise FeaturevisError(f"{path}: save the adversarial photo as .png; lossy formats erase the perturbation")
    image_file(path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to perturb")
    add_model(p)
    p.add_argument("-t", "--target", default=None, help="class (index or name) to reach; default: any other class")
    p.add_argument("--method", choices=("pgd", "fgsm"), default="pgd", help="attack (default pgd)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf", help="how eps is measured (default linf)")
    p.add_argument("--eps", type=parse_eps, default=DEFAULT_EPS, help="budget, e.g. 2/255 (default) or 0.5 for l2")
    add_steps(p, "PGD steps (default %(default)s)", DEFAULT_STEPS)
    add_size(p, "longest side in px (default %(default)s; 0: the photo's own)", DEFAULT_SIZE, zero=True, square=False)
    add_output(
        p, "adversarial photo, .png (default PHOTO-adv.png)", lambda a: f"{Path(a.photo).stem}-adv.png", _check_png
    )
    add_common(p)


def run(args: argparse.Namespace) -> int:
    out = args.output
    magnified = out.with_name(f"{out.stem}-perturbation.png")
    panel = out.with_name(f"{out.stem}-panel.png")
    photo = load_image(args.photo)
    model = model_from_args(args)
    r = attack(
        model,
        photo,
        args.target,
        method=args.method,
        eps=args.eps,
        norm=args.norm,
        steps=args.steps,
        size=args.size or None,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    r.save(out)
    save_image(r.magnified(), magnified)
    save_image(r.panel(), panel)
    print(f"before: {r.name(r.original)} ({r.original_prob:.1%})")
    print(f"after:  {r.name(r.predicted)} ({r.predicted_prob:.1%})", end="")
    if r.target is not None and r.target != r.predicted:
        print(f"; target {r.name(r.target)} at {r.target_prob:.1%}", end="")
    print(f"  [{'success' if r.success else 'failed'}, L-inf {r.linf * 255:.1f}/255, L2 {r.l2:.3f}]")
    print(f"wrote {out}, {magnified} (perturbation, magnified) and {panel}")
    return 130 if r.interrupted else 0
