"""DeepDream speed: seconds per megapixel per step, against the model's own forward+backward.

    python benchmarks/dream_speed.py [--sizes 512x512,1024x768] [--layer _blocks.10] [--threads 1]

Rows, all on EfficientNet-Lite0 as the zoo loads it, in one run (ratios, not absolute times, are
what carries between machines):
- floor: one forward pass of the whole image at that size, frozen weights, stopped after the
  layer, mean-square objective, backward to the input only: the least any DeepDream step can do.
- floor, tiled: the same, one pass per tile of the cut the dream makes (no roll, no update): the
  floor for a step that must fit in bounded memory. On a CPU the tiles are often *faster* than
  one big pass (they stay in cache), so the untiled floor is not always the lower one.
- dream step: one step of :func:`featurevis.recipes.dream` at that size (octaves=1), from the difference
  between runs of 2 and ``--steps`` steps, so the fixed costs (objective before and after) drop
  out. It rolls the image, cuts tiles of ``--tile`` px, normalizes the gradient and clamps.
- dream, whole call: a default call (4 octaves x 10 steps, objective before and after) divided
  by the pixel-steps it does (sum over octaves of pixels x steps): everything included.
Ratios are to the lower of the two floors. Target: the dream step within 1.3x of the floor.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.core.tiling import tile_boxes
from featurevis.recipes.dream import octave_shapes


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def floor_step(model: fv.FeatureModel, layer: str, x: torch.Tensor, steps: int) -> Callable[[], None]:
    obj = O.layer(layer)
    x = x.clone().requires_grad_(True)

    def run() -> None:
        for _ in range(steps):
            obj(model(x, [layer])).sum().backward()
            x.grad = None

    return run


def floor_tiled_step(model: fv.FeatureModel, layer: str, x: torch.Tensor, tile: int, steps: int) -> Callable[[], None]:
    obj = O.layer(layer)
    tiles = [x[..., y0:y1, x0:x1].clone().requires_grad_(True) for y0, y1, x0, x1 in tile_boxes(*x.shape[-2:], tile)]

    def run() -> None:
        for _ in range(steps):
            for t in tiles:
                obj(model(t, [layer])).sum().backward()
                t.grad = None

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="512x512,1024x768", help="WxH list (default 512x512,1024x768)")
    ap.add_argument("--layer", default="_blocks.10")
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--whole", action="store_true", help="also time a whole default dream call per size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("efficientnet_lite0")
    print(f"lite0, layer {args.layer}, tile {args.tile}, {args.threads} thread(s), min of {args.repeats} runs")
    print(
        f"{'size':>10} {'MP':>5} {'floor s/MP/step':>16} {'floor, tiled':>13} {'dream s/MP/step':>16} "
        f"{'ratio to floor':>15}  {'whole call':>16}"
    )
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.lower().split("x"))
        mp = w * h / 1e6
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        floor = best_of(floor_step(model, args.layer, x, args.steps), args.repeats) / args.steps / mp
        tiled = best_of(floor_tiled_step(model, args.layer, x, args.tile, args.steps), args.repeats) / args.steps / mp
        lowest = min(floor, tiled)

        def dream_run(steps: int, x=x) -> None:
            fv.dream(model, x, args.layer, octaves=1, steps=steps, tile=args.tile, progress=False)

        t_many = best_of(lambda: dream_run(args.steps), args.repeats)
        t_two = best_of(lambda: dream_run(2), args.repeats)
        step = (t_many - t_two) / (args.steps - 2) / mp
        whole = ""
        if args.whole:
            t0 = time.perf_counter()
            fv.dream(model, x, args.layer, tile=args.tile, progress=False)
            pixel_steps = sum(hh * ww for hh, ww in octave_shapes(h, w, 4, 1.4)) * 10 / 1e6
            per = (time.perf_counter() - t0) / pixel_steps
            whole = f"{per:.3f} ({per / lowest:.2f}x)"
        print(
            f"{spec:>10} {mp:>5.2f} {floor:>16.3f} {tiled:>13.3f} {step:>16.3f} {step / lowest:>14.2f}x  {whole:>16}",
            flush=True,
        )


if __name__ == "__main__":
    main()
