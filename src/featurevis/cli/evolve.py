"""``featurevis evolve``: fooling images for classes, evolved with no gradients (MAP-Elites)."""

from __future__ import annotations

import argparse

from ..core.errors import FeaturevisError
from ..recipes.evolve import DEFAULT_GENERATIONS, DEFAULT_POPULATION, DEFAULT_SIZE, ENCODINGS, evolve
from .args import (
    add_common,
    add_model,
    add_output,
    add_save_size,
    add_size,
    folder,
    model_from_args,
    positive_int,
    probability,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model(p, positional=True)
    p.add_argument(
        "-c",
        "--class",
        dest="classes",
        required=True,
        help="CLASS[,CLASS...]: names or indices, one cell each; 'all' for every class",
    )
    p.add_argument("--encoding", choices=ENCODINGS, default="cppn", help="cppn (patterns, default) or direct (pixels)")
    p.add_argument("--generations", type=int, default=DEFAULT_GENERATIONS, help="generations (default %(default)s)")
    p.add_argument(
        "--population",
        type=positive_int,
        default=DEFAULT_POPULATION,
        help="offspring per generation, scored in one batch (default %(default)s)",
    )
    add_size(p, "side the network sees, px (default %(default)s)", DEFAULT_SIZE)
    add_save_size(p, "draw the saved images at this side (a CPPN stays sharp)")
    p.add_argument("--elites", type=positive_int, default=4, help="parents kept per class (default 4)")
    p.add_argument("--crossover", type=probability, default=0.2, help="crossover probability (default 0.2)")
    p.add_argument("--top", type=positive_int, help="save only the N classes with the most confident images")
    add_output(
        p, "output folder (default ./featurevis-evolve)", "featurevis-evolve", folder, metavar="DIR", aliases=["--out"]
    )
    add_common(p)


def run(args: argparse.Namespace) -> int:
    if args.generations < 0:
        raise FeaturevisError(f"--generations must be >= 0, got {args.generations}")
    out = args.output
    model = model_from_args(args)
    result = evolve(
        model,
        args.classes,
        encoding=args.encoding,
        population=args.population,
        generations=args.generations,
        size=args.size,
        elites=args.elites,
        crossover=args.crossover,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    if args.top:
        result = result.top(args.top)
    result.save_all(out, size=args.save_size)
    for name, conf in zip(result.names, result.confidences.tolist(), strict=True):
        print(f"{name:<32} {conf:.3f}")
    note = " (interrupted)" if result.interrupted else ""
    print(f"wrote {out}/ ({result.evaluations} evaluations, {result.seconds:.1f} s){note}")
    return 130 if result.interrupted else 0
