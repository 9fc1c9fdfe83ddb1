"""``featurevis sanity randomize|transforms TARGET``: does a visualization depend on the trained
weights (cascading randomization, Adebayo et al. 2018), and does it survive transforms it never
saw? Prints the figures and saves the picture."""

from __future__ import annotations

import argparse

from ..core.params import PARAMETERIZATIONS
from .args import add_common, add_model, add_output, add_size, add_steps, model_from_args, positive_int


def _default_output(args: argparse.Namespace) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in args.target).strip("_")
    return f"sanity-{args.check}-{safe or 'target'}.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "check",
        choices=["randomize", "transforms"],
        help="randomize: re-initialize the weights from the top down in stages and render again; "
        "transforms: the render's objective under its own transform draws, fresh draws and none",
    )
    p.add_argument("target", help="e.g. _blocks.8:12, _blocks.8, class:285 (the TARGET language of render)")
    add_model(p)
    add_output(p, "output PNG/JPG (default sanity-CHECK-TARGET.png)", _default_output)
    add_size(p, "render side in px (default %(default)s)", 128)
    add_steps(p, "steps per render (default %(default)s)", 256)
    p.add_argument(
        "--stages", type=positive_int, default=4, help="randomize: stages of the cascade (default %(default)s)"
    )
    p.add_argument("--param", default="fourier", choices=list(PARAMETERIZATIONS), help="transforms: parameterization")
    p.add_argument(
        "--transforms",
        default="auto",
        help="transforms: the set the render is optimized with (auto, standard, patch, maco, none; default auto)",
    )
    p.add_argument(
        "--reference", default="auto", help="transforms: the set of fresh draws it is tested under (default auto)"
    )
    p.add_argument("--draws", type=positive_int, default=32, help="transforms: draws of each kind (default 32)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from ..recipes.sanity import randomization_check, transform_check

    model = model_from_args(args)
    if args.check == "randomize":
        r = randomization_check(
            model, args.target, stages=args.stages, size=args.size, steps=args.steps, seed=args.seed,
            progress=args.progress,
        )  # fmt: skip
        print(r.table())
        print(f"(SSIM of pixels; judge cos: cosine of {r.judge} pooled features; activation: the original unit's)")
    else:
        r = transform_check(
            model, args.target, param=args.param, transforms=None if args.transforms == "none" else args.transforms,
            reference=args.reference, draws=args.draws, size=args.size, steps=args.steps, seed=args.seed,
            progress=args.progress,
        )  # fmt: skip
        print(r.summary())
    r.save(args.output)
    note = " (interrupted: the stages done so far)" if r.interrupted else ""
    print(f"saved {args.output}{note}")
    return 130 if r.interrupted else 0
