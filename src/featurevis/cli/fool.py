"""The `attack` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import check_writable, load_image, save_image
from ..recipes.attack import DEFAULT_EPS, DEFAULT_SIZE, DEFAULT_STEPS, attack
from ..zoo import DEFAULT_MODEL
from .args import _non_negative, _positive, add_common, command, model_from_args


def parse_eps(text: str) -> float:
    """``2/255`` or ``0.008``: a positive number (a fraction reads naturally as grey levels)."""
    try:
        num, _, den = text.strip().partition("/")
        v = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or fraction like 2/255") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _fool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to perturb")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument("-t", "--target", default=None, help="class (index or name) to reach; default: any other class")
    p.add_argument("--method", choices=("pgd", "fgsm"), default="pgd", help="attack (default pgd)")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf", help="how eps is measured (default linf)")
    p.add_argument("--eps", type=parse_eps, default=DEFAULT_EPS, help="budget, e.g. 2/255 (default) or 0.5 for l2")
    p.add_argument("--steps", type=_positive, default=DEFAULT_STEPS, help=f"PGD steps (default {DEFAULT_STEPS})")
    p.add_argument("--size", type=_non_negative, default=DEFAULT_SIZE, help="longest side in px (0: the photo's own)")
    p.add_argument("-o", "--output", default=None, help="adversarial photo, .png (default PHOTO-adv.png)")
    add_common(p)


@command("fool", "perturb a photo invisibly so the network misclassifies it (FGSM/PGD)", _fool_args)
def run_fool(args: argparse.Namespace) -> int:
    photo_path = Path(args.photo)
    out = Path(args.output) if args.output else Path(f"{photo_path.stem}-adv.png")
    if out.suffix.lower() != ".png":
        raise FeaturevisError(f"{out}: save the adversarial photo as .png; lossy formats erase the perturbation")
    check_writable(out)
    magnified = out.with_name(f"{out.stem}-perturbation.png")
    panel = out.with_name(f"{out.stem}-panel.png")
    photo = load_image(photo_path)
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
        progress=not args.quiet,
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
    if r.interrupted:
        return 130
    return 0
