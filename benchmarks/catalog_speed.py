"""Catalog throughput: channels per minute, batched (one optimization renders many channels) vs one
channel at a time, at the catalog's defaults (128 px, 256 steps).

    python benchmarks/catalog_speed.py [--layer _blocks.4] [--channels 16] [--batch 16] [--threads 1]

Both sides render the same channels of EfficientNet-Lite0 with the same engine and settings
(Fourier parameterization, standard transforms, Adam lr 0.05):
- batched: ``objectives.channels`` in batches of ``--batch`` images, image i maximizing channel i
  (what ``featurevis catalog build`` does for its visualizations);
- one by one: ``featurevis.render(model, "LAYER:C", size=128, steps=256)`` per channel.
Each shape is warmed up first (oneDNN plans a kernel per shape), so neither side pays for that.
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis import objectives as O


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="_blocks.4")
    ap.add_argument("--channels", type=int, default=16, help="how many channels (the first N) to render")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("efficientnet_lite0")
    chs = list(range(args.channels))
    kw = dict(size=args.size, progress=False)

    for b in {args.batch, 1, len(chs) % args.batch} - {0}:  # warm up every batch shape used below
        fv.render(model, O.channels(args.layer, chs[:b]), batch=b, steps=3, **kw)

    t0 = time.perf_counter()
    batched_values = []
    for i in range(0, len(chs), args.batch):
        part = chs[i : i + args.batch]
        r = fv.render(model, O.channels(args.layer, part), batch=len(part), steps=args.steps, seed=i, **kw)
        batched_values += r.values.tolist()
    batched = time.perf_counter() - t0

    t0 = time.perf_counter()
    single_values = []
    for c in chs:
        r = fv.render(model, f"{args.layer}:{c}", steps=args.steps, seed=c, **kw)
        single_values += r.values.tolist()
    single = time.perf_counter() - t0

    per_min = lambda s: 60 * len(chs) / s  # noqa: E731
    print(f"lite0 {args.layer}, {len(chs)} channels, {args.size} px, {args.steps} steps, {args.threads} thread(s)")
    print("| mode | time | channels / min | mean achieved activation |")
    print("|---|---|---|---|")
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    print(f"| one by one | {single:.1f} s | {per_min(single):.2f} | {mean(single_values):.3g} |")
    print(f"| batched ({args.batch}) | {batched:.1f} s | {per_min(batched):.2f} | {mean(batched_values):.3g} |")
    print(f"speed-up per channel: {single / batched:.2f}x")


if __name__ == "__main__":
    main()
