"""How many lite0 channels come out flat, with and without redirected ReLU gradients.

    OMP_NUM_THREADS=1 python benchmarks/dead_units.py [--steps 64] [--size 128] [--every 1,20]

A channel is *flat* when its render is a near-constant image (pixel std below ``--flat-std``)
or its final activation is no higher than on the starting image: gradient ascent never got
going (lucent#9, lucent#34). Each layer's channels are rendered as one batch (image i ->
channel i) with the standard transforms and the same seed, once with plain gradients and once
with the first ``--redirect`` steps redirected (the default of ``render``). Layers: _blocks.8
(block output: a linear projection plus a residual, behind ReLU6s) and _head_act (a ReLU6 map,
where an off unit has no gradient at all). VGG-16 weights cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis import objectives as O


def measure(model, layer: str, chs: list[int], args, redirect: int) -> dict:
    g = torch.Generator().manual_seed(0)
    p = fv.FourierImage(len(chs), args.size, generator=g)
    obj = O.channels(layer, chs)
    with torch.no_grad():
        start = obj(model(p(), [layer]))
    t = time.perf_counter()
    r = fv.render(model, obj, size=args.size, param=p, steps=args.steps, redirect_relu=redirect, seed=0, progress=False)
    std = r.images.flatten(1).std(1)
    flat_img = std < args.flat_std
    no_gain = r.values <= start
    return {
        "flat": int((flat_img | no_gain).sum()),
        "flat_img": int(flat_img.sum()),
        "no_gain": int(no_gain.sum()),
        "dead_start": int((start <= 0).sum()),
        "mean_gain": float((r.values - start).mean()),
        "seconds": time.perf_counter() - t,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--redirect", type=int, default=16)
    ap.add_argument("--flat-std", type=float, default=0.02)
    ap.add_argument("--layers", default="_blocks.8,_head_act")
    ap.add_argument("--every", default="1,20", help="channel stride per layer (all of _blocks.8, every 20th of 1280)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = fv.load_model("efficientnet_lite0")
    print(f"lite0, {args.size} px, {args.steps} steps, standard transforms, flat: std < {args.flat_std} or no gain")
    print("| layer | channels | act <= 0 at start | redirect | flat | near-constant | no gain | mean gain | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for layer, every in zip(args.layers.split(","), map(int, args.every.split(",")), strict=True):
        chs = list(range(0, model.layer_shape(layer, args.size)[0], every))
        for redirect in (0, args.redirect):
            m = measure(model, layer, chs, args, redirect)
            print(
                f"| {layer} | {len(chs)} | {m['dead_start']} | {redirect or 'off'} | **{m['flat']}** | "
                f"{m['flat_img']} | {m['no_gain']} | {m['mean_gain']:.3g} | {m['seconds']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
