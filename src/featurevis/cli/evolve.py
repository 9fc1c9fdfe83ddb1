"""The `evolve` command."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import check_writable
from ..recipes.evolve import DEFAULT_GENERATIONS, DEFAULT_POPULATION, DEFAULT_SIZE, ENCODINGS, evolve
from ..zoo import DEFAULT_MODEL
from .args import _positive, add_common, command


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return v


def _evolve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument(
        "-c",
        "--class",
        dest="classes",
        required=True,
        help="CLASS[,CLASS...]: names or indices, one cell each; 'all' for every class",
    )
    p.add_argument("--encoding", choices=ENCODINGS, default="cppn", help="cppn (patterns, default) or direct (pixels)")
    p.add_argument(
        "--generations", type=int, default=DEFAULT_GENERATIONS, help=f"generations (default {DEFAULT_GENERATIONS})"
    )
    p.add_argument(
        "--population",
        type=_positive,
        default=DEFAULT_POPULATION,
        help=f"offspring per generation, scored in one batch (default {DEFAULT_POPULATION})",
    )
    p.add_argument(
        "--size", type=_positive, default=DEFAULT_SIZE, help=f"side the network sees, px (default {DEFAULT_SIZE})"
    )
    p.add_argument("--save-size", type=_positive, help="draw the saved images at this side (a CPPN stays sharp)")
    p.add_argument("--elites", type=_positive, default=4, help="parents kept per class (default 4)")
    p.add_argument("--crossover", type=_probability, default=0.2, help="crossover probability (default 0.2)")
    p.add_argument("--top", type=_positive, help="save only the N classes with the most confident images")
    p.add_argument("-o", "--out", default="featurevis-evolve", help="output folder (default ./featurevis-evolve)")
    add_common(p)


@command("evolve", "evolve fooling images for classes with no gradients (CPPN or pixel genomes)", _evolve_args)
def run_evolve(args: argparse.Namespace) -> int:
    from ..cli.args import model_from_args

    if args.generations < 0:
        raise FeaturevisError(f"--generations must be >= 0, got {args.generations}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FeaturevisError(f"{out}: exists and is not a folder")
    check_writable(out / "grid.png")
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
        progress=not args.quiet,
    )
    if args.top:
        result = result.top(args.top)
    result.save_all(out, size=args.save_size)
    for name, conf in zip(result.names, result.confidences.tolist(), strict=True):
        print(f"{name:<32} {conf:.3f}")
    note = " (interrupted)" if result.interrupted else ""
    print(f"wrote {out}/ ({result.evaluations} evaluations, {result.seconds:.1f} s){note}")
    return 130 if result.interrupted else 0
