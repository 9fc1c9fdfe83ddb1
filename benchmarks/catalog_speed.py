"""Catalog throughput: channels per minute, batched (one optimization renders many channels) vs one
channel at a time, at the catalog's defaults (128 px, 256 steps).

    python benchmarks/catalog_speed.py [--layer _blocks.4] [--channels 16] [--batches 8,16] [--threads 1]

Both sides render the same channels of EfficientNet-Lite0 with the same engine and settings
(Fourier parameterization, standard transforms, Adam lr 0.05):
- batched: ``objectives.channels`` in batches of B images, image i maximizing channel i
  (what ``featurevis catalog build`` does for its visualizations);
- one by one: ``featurevis.core.engine(model, "LAYER:C", size=128, steps=256)`` per channel.
Each shape is warmed up first (oneDNN plans a kernel per shape), so neither side pays for that.
Throughput is given per CPU-minute of this process (wall time is printed too): on a machine
shared with other jobs the wall time of either mode depends on what else runs.
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis import objectives as O


def timed(fn) -> tuple[float, float, list[float]]:
    """(wall seconds, CPU seconds of this process, values). CPU time is what carries on a shared
    machine: other processes stretch the wall time of both modes, not their CPU time."""
    w, c = time.perf_counter(), time.process_time()
    values = fn()
    return time.perf_counter() - w, time.process_time() - c, values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="_blocks.4")
    ap.add_argument("--channels", type=int, default=16, help="how many channels (the first N) to render")
    ap.add_argument("--batches", default="8,16", help="batch sizes to compare with one by one")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("efficientnet_lite0")
    chs = list(range(args.channels))
    batches = [int(b) for b in args.batches.split(",")]
    kw = dict(size=args.size, progress=False)

    shapes = {1} | {b for b in batches} | {len(chs) % b for b in batches} - {0}
    for b in sorted(shapes):  # warm up every batch shape used below
        fv.render(model, O.channels(args.layer, chs[:b]), batch=b, steps=3, **kw)

    def batched(b: int):
        def run() -> list[float]:
            values = []
            for i in range(0, len(chs), b):
                part = chs[i : i + b]
                r = fv.render(model, O.channels(args.layer, part), batch=len(part), steps=args.steps, seed=i, **kw)
                values += r.values.tolist()
            return values

        return run

    def one_by_one() -> list[float]:
        return [fv.render(model, f"{args.layer}:{c}", steps=args.steps, seed=c, **kw).values.item() for c in chs]

    rows = [("one by one", *timed(one_by_one))]
    rows += [(f"batched ({b})", *timed(batched(b))) for b in batches]
    n = len(chs)
    print(f"lite0 {args.layer}, {n} channels, {args.size} px, {args.steps} steps, {args.threads} thread(s)")
    print("| mode | wall | CPU | channels / CPU-minute | speed-up per channel (CPU) | mean achieved activation |")
    print("|---|---|---|---|---|---|")
    base = rows[0][2]
    for name, wall, cpu, values in rows:
        mean = sum(values) / len(values)
        print(f"| {name} | {wall:.1f} s | {cpu:.1f} s | {60 * n / cpu:.1f} | {base / cpu:.2f}x | {mean:.3g} |")


if __name__ == "__main__":
    main()
