"""Evolved fooling images: how confident lite0 gets on CPPN vs direct (pixel) genomes, same budget.

    python benchmarks/evolve_quality.py [--classes "king penguin,starfish"] [--population 64]
                                        [--generations 150] [--size 160] [--out evolve-figures]

Runs :func:`featurevis.evolve` (MAP-Elites, one cell per class, one batched forward pass per
generation) once with the CPPN encoding and once with the direct encoding, with the same seed,
population and generations (so the same number of network evaluations), on one thread. Prints a
markdown table of each class's champion confidence (softmax probability) for both encodings and,
for the CPPN, the confidence when the champion is drawn again at lite0's own 224 px; then how
many classes reached 90 % and the wall time. Writes both grids (and per-class images) to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import featurevis as fv
from featurevis.evolve import confidences

#: Classes whose pictures a person knows at once; none of them is a texture or a pattern.
DEFAULT_CLASSES = (
    "king penguin,starfish,baseball,electric guitar,remote control,school bus,monarch butterfly,lemon,volcano,pizza"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--classes", default=DEFAULT_CLASSES)
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
        r.save_all(Path(args.out) / enc, size=224 if enc == "cppn" else None)
        print(f"{enc}: {r.evaluations} evaluations in {r.seconds:.0f} s", flush=True)
    first = next(iter(results.values()))
    cppn = results.get("cppn")
    at224 = confidences(model, cppn.render_at(model.input_size), cppn.classes).diagonal() if cppn else None
    head = [f"{e} @{args.size}" for e in results] + ([f"cppn drawn @{model.input_size}"] if cppn else [])
    print("\n| class | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for k, name in enumerate(first.names):
        cells = [f"{r.confidences[k]:.3f}" for r in results.values()]
        if at224 is not None:
            cells.append(f"{at224[k]:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    hits = [f"{int((r.confidences >= 0.9).sum())}/{len(r.names)}" for r in results.values()]
    means = [f"{r.confidences.mean():.3f}" for r in results.values()]
    extra = [f"{int((at224 >= 0.9).sum())}/{len(at224)}", f"{at224.mean():.3f}"] if at224 is not None else []
    print("| **≥ 90 %** | " + " | ".join(hits + extra[:1]) + " |")
    print("| **mean** | " + " | ".join(means + extra[1:]) + " |")
    print("| **wall time (s)** | " + " | ".join(f"{r.seconds:.0f}" for r in results.values()) + " |")
    for enc, r in results.items():
        curve = r.history.mean(1)
        marks = [g for g in (0, len(curve) // 4, len(curve) // 2, len(curve) - 1)]
        print(f"\n{enc} mean champion confidence by generation: " + ", ".join(f"{g}: {curve[g]:.3f}" for g in marks))
    print(f"\ngrids: {Path(args.out)}/<encoding>/grid.png")


if __name__ == "__main__":
    main()
