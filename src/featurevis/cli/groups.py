"""``featurevis groups``: a photo's neuron groups at one layer (Olah et al. 2018, Building Blocks)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..core.images import load_image
from ..recipes.groups import DEFAULT_GROUPS, DEFAULT_SIZE, DEFAULT_STEPS, groups
from .args import add_common, add_model, add_output, add_size, add_steps, model_from_args, positive_int


def add_photo_and_layer(p: argparse.ArgumentParser) -> None:
    """``PHOTO``, ``-m MODEL`` and ``-l LAYER``: what the photo explanations start from."""
    p.add_argument("photo", help="the photo to explain")
    add_model(p)
    p.add_argument("-l", "--layer", default=None, help="a layer with a spatial map (default: the model's default)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_photo_and_layer(p)
    p.add_argument(
        "--groups", type=positive_int, default=DEFAULT_GROUPS, help="neuron groups to find (default %(default)s)"
    )
    add_size(p, "side of each group's visualization in px (default %(default)s)", DEFAULT_SIZE)
    add_steps(p, "render steps (default %(default)s)", DEFAULT_STEPS)
    add_output(p, "panel image (default PHOTO-groups.png)", lambda args: f"{Path(args.photo).stem}-groups.png")
    add_common(p)


def run_on_photo(args: argparse.Namespace, recipe: Callable, **options: object):
    """``recipe(model, photo, layer, ...)`` with the arguments every photo explanation shares."""
    return recipe(
        model_from_args(args),
        load_image(args.photo),
        args.layer,
        size=args.size,
        steps=args.steps,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
        **options,
    )


def run(args: argparse.Namespace) -> int:
    r = run_on_photo(args, groups, groups=args.groups)
    r.save(args.output)
    print(f"{r.k} groups at {r.layer}: relative reconstruction error {r.error:.3f}")
    note = " (interrupted: visualizations unfinished)" if r.interrupted else ""
    print(f"wrote {args.output}: photo and each group's map above, all groups and each group's picture below{note}")
    return 130 if r.interrupted else 0
