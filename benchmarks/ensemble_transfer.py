"""Class renders against one network or several at once, judged by a network none of them saw.

    python benchmarks/ensemble_transfer.py [--classes 6] [--steps 192]

Rows: lite0 alone; lite0 alone with twice the steps (the ensemble's time, spent on one network);
lite0 + lite1 (``render([lite0, lite1], ...)``: the class logit summed over both). Judge: lite2,
on the saved 8-bit images, plain and degraded (3x3 blur, 112 px), as in ``quality.py``. Same
seed and transforms in every row; seconds are reported beside the scores.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from quality import CLASSES, degrade, judge, quantize, render_classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=6, help="the first N classes of quality.py's set")
    ap.add_argument("--steps", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classes = CLASSES[: args.classes]
    lite0, lite1, lite2 = (fv.load_model(n) for n in ("lite0", "lite1", "lite2"))
    print(f"{len(classes)} classes, {args.steps} steps, 224 px, judge: lite2 (held out)")
    print(
        f"{'rendered against':<18} {'s':>6} {'top1':>6} {'mean p':>7} {'min p':>6} {'deg top1':>9} {'deg mean p':>11}"
    )
    rows = [
        ("lite0", lite0, args.steps),
        ("lite0, 2x steps", lite0, 2 * args.steps),  # the ensemble's time, spent on one network
        ("lite0 + lite1", [lite0, lite1], args.steps),
    ]
    for name, model, steps in rows:
        images, seconds = render_classes(model, classes, len(classes), steps=steps, progress=False, seed=0)
        images = quantize(images)
        plain, deg = judge(lite2, images, classes), judge(lite2, degrade(images), classes)
        print(
            f"{name:<18} {seconds:>6.0f} {plain['top1']:>6.2f} {plain['mean_p']:>7.3f} {plain['min_p']:>6.3f}"
            f" {deg['top1']:>9.2f} {deg['mean_p']:>11.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
