"""Evolved fooling images: how confident lite0 gets on CPPN vs direct (pixel) genomes, same budget.

    python benchmarks/evolve_quality.py [--classes all] [--population 64] [--generations 150]
                                        [--size 160] [--top 16] [--out evolve-figures]

Runs :func:`featurevis.recipes.evolve` (MAP-Elites, one cell per class, one batched forward pass per
generation) once with the CPPN encoding and once with the direct encoding, with the same seed,
population and generations (so the same number of network evaluations), on one thread. Prints
how many classes' champions reached 50 / 90 / 99 % confidence (softmax probability) with each
encoding, then a markdown table of the ``--top`` classes the CPPN fooled best, with the direct
encoding's champion for the same classes and the CPPN champion's confidence when drawn again at
lite0's own 224 px. Writes each encoding's top grid (and per-class images) to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import featurevis as fv
from featurevis.recipes.evolve import confidences

#: Classes whose pictures a person knows at once; none of them is a texture or a pattern.
DEFAULT_CLASSES = "king penguin,starfish,baseball,electric guitar,remote control,school bus,monarch,lemon,volcano,pizza"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--classes", default="all", help="'all' (default) or CLASS,CLASS,...")
    ap.add_argument("--top", type=int, default=16, help="classes to tabulate and save")
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--generations", type=int, default=150)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--encodings", default="cppn,direct")
    ap.add_argument("--out", default="evolve-figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model(args.model)
    budget = args.population * (args.generations + 1)
    print(
        f"{args.model}, {args.size} px, population {args.population}, {args.generations} generations "
        f"= {budget} evaluations per encoding, seed {args.seed}, {args.threads} thread(s)\n"
    )
    results = {}
    for enc in args.encodings.split(","):
        r = fv.evolve(
            model,
            args.classes,
            encoding=enc,
            population=args.population,
            generations=args.generations,
            size=args.size,
            seed=args.seed,
            progress=False,
        )
        results[enc] = r
        print(f"{enc}: {r.evaluations} evaluations in {r.seconds:.0f} s", flush=True)
    n = len(next(iter(results.values())).classes)
    print("\n| encoding | classes >= 50 % | >= 90 % | >= 99 % | mean confidence | wall time |")
    print("|---|---:|---:|---:|---:|---:|")
    for enc, r in results.items():
        c = r.confidences
        counts = " | ".join(f"{int((c >= t).sum())}/{n}" for t in (0.5, 0.9, 0.99))
        print(f"| {enc} | {counts} | {c.mean():.3f} | {r.seconds:.0f} s |")
    lead = results.get("cppn") or next(iter(results.values()))
    best = lead.top(args.top)
    cols = list(results)
    at224 = None
    if "cppn" in results:
        at224 = confidences(model, best.render_at(model.input_size), best.classes).diagonal()
    head = [f"{e} @{args.size}" for e in cols] + ([f"cppn drawn @{model.input_size}"] if at224 is not None else [])
    print(f"\nThe {args.top} classes the {lead.encoding} encoding fooled best:\n")
    print("| class | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for k, (idx, name) in enumerate(zip(best.classes, best.names, strict=True)):
        cells = [f"{results[e].confidences[results[e].classes.index(idx)]:.3f}" for e in cols]
        if at224 is not None:
            cells.append(f"{at224[k]:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for enc, r in results.items():
        curve = r.history.mean(1)
        marks = sorted({0, len(curve) // 4, len(curve) // 2, len(curve) - 1})
        print(f"\n{enc}: mean champion confidence by generation: " + ", ".join(f"{g}: {curve[g]:.3f}" for g in marks))
        r.top(args.top).save_all(Path(args.out) / enc)
    print(f"\ngrids of the top {args.top}: {Path(args.out)}/<encoding>/grid.png")


if __name__ == "__main__":
    main()
