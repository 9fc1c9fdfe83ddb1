"""Does the iterate average cost a hidden unit's render anything? The unit's own activation.

    python benchmarks/units_average.py [--layers _blocks.6,_blocks.10,_blocks.14] [--channels 4] [--steps 320]

A class render draws its images from the moving average of the steps (``fv.render(...,
average=0.97)``), which lite1 and lite2 read better (``quality.py --curve``). A unit's picture is
judged by the unit itself: this renders the first channels of each layer on lite0 with the last
step's images and with the average, same seed, and prints each channel's activation (the
render's final objective) and their ratio.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis import objectives as O


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="_blocks.6,_blocks.10,_blocks.14")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--steps", type=int, default=320)
    ap.add_argument("--average", type=float, default=0.97)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lite0 = fv.load_model("efficientnet_lite0")
    ratios = []
    for layer in args.layers.split(","):
        obj = sum(O.channel(layer, c, batch=c) for c in range(args.channels))
        last, avg = (
            fv.render(lite0, obj, batch=args.channels, steps=args.steps, average=a, progress=False).values
            for a in (0.0, args.average)
        )
        ratios += (avg / last).tolist()
        print(
            f"{layer}: last step " + " ".join(f"{v:.2f}" for v in last.tolist())
            + " | average " + " ".join(f"{v:.2f}" for v in avg.tolist())
            + " | ratio " + " ".join(f"{v:.3f}" for v in (avg / last).tolist()),
            flush=True,
        )  # fmt: skip
    print(f"average / last step: {min(ratios):.3f}-{max(ratios):.3f}, mean {sum(ratios) / len(ratios):.3f}")


if __name__ == "__main__":
    main()
