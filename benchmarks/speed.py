"""Milliseconds per optimization step, against the model's own forward+backward floor, in one run.

    python benchmarks/speed.py [--steps 32] [--repeats 3] [--layer _blocks.8]

Rows (all on EfficientNet-Lite0, channel objective on ``--layer``, 2 torch threads):
- floor: the packaged network as published (BN unfused, default NCHW layout, the zoo's CPU
  convolution rewrites off: ``plain_convolutions``), weights frozen,
  forward stopped after the layer, backward to the input only.
- the same floor in channels_last (NHWC) layout, which featurevis uses by default.
- plain: the full network with trainable weights (what a naive loop costs).
- featurevis: a whole ``render`` step (Fourier param, standard transforms, model, objective,
  Adam). Its transforms down-scale randomly, so its network sees ~0.8x the nominal size;
  the "no transforms" row shows the step at exactly the nominal size.
- class render: a whole step of ``render(model, "class:1")`` with its defaults, with and
  without the smooth ReLU gradients (the cost of their gate).
Ratios are to the floor measured in the same run; see ../shared/REFERENCE.md for peers.
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.zoo import efficientnet_lite
from featurevis.zoo.convs import Conv2d


def time_steps(fn, steps: int, repeats: int) -> float:
    """Minimum over ``repeats`` of the mean seconds per call, after one warm-up run."""
    fn(4)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(steps)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def plain_convolutions(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with the zoo's CPU convolution rewrites off: the floor is the network as published."""
    for m in net.modules():
        if isinstance(m, Conv2d):
            m.rewrites = False
    return net


def floor_fn(
    net: torch.nn.Module, layer: str, ch: int, batch: int, size: int, trainable: bool, channels_last: bool = False
):
    fm = fv.FeatureModel(
        plain_convolutions(net), mean=(127 / 255,) * 3, std=(128 / 255,) * 3, channels_last=channels_last
    )
    if trainable:
        fm.net.requires_grad_(True)
    x = torch.rand(batch, 3, size, size, requires_grad=True)
    layers = ["logits"] if trainable else [layer]

    def run(n: int) -> None:
        for _ in range(n):
            acts = fm(x, layers)
            out = acts["logits"][:, ch].sum() if trainable else acts[layer][:, ch].mean()
            out.backward()
            x.grad = None
            for p in fm.net.parameters():
                p.grad = None

    return run


def render_fn(model: fv.FeatureModel, target, batch: int, size: int, transforms: str = "standard", **options):
    def run(n: int) -> None:
        fv.render(model, target, size=size, batch=batch, steps=n, progress=False, transforms=transforms, **options)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layer", default="_blocks.8")
    ap.add_argument("--channel", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sd = torch.load(efficientnet_lite.weights_path("efficientnet_lite0"), weights_only=True)

    def published() -> torch.nn.Module:  # a fresh copy per case: FeatureModel may change its layout
        return efficientnet_lite.EfficientNetLite.from_state_dict(sd).eval()

    model = fv.load_model("efficientnet_lite0")
    unit = O.channel(args.layer, args.channel)
    cases = [(128, 1), (128, 8), (224, 1), (224, 8)]
    rows = {
        "floor (published net, frozen, stopped at layer, input grad only)": lambda b, s: floor_fn(
            published(), args.layer, args.channel, b, s, trainable=False
        ),
        "floor, but in channels_last memory layout": lambda b, s: floor_fn(
            published(), args.layer, args.channel, b, s, trainable=False, channels_last=True
        ),
        "plain full network, weights not frozen": lambda b, s: floor_fn(
            published(), args.layer, args.channel, b, s, trainable=True
        ),
        "featurevis render step, no transforms (net sees nominal size)": lambda b, s: render_fn(
            model, unit, b, s, "none"
        ),
        "featurevis render step, default (standard transforms)": lambda b, s: render_fn(model, unit, b, s),
        # A class render's defaults: the residual rewrites (dropped branches save work), the
        # average, and smooth ReLU gradients, whose Python autograd gate is the cost measured here.
        "class render step, true ReLU gradients (smooth_relu=0)": lambda b, s: render_fn(
            model, "class:1", b, s, smooth_relu=0
        ),
        "class render step, default (smooth ReLU gradients, t = 3)": lambda b, s: render_fn(model, "class:1", b, s),
    }
    results: dict[str, list[float]] = {}
    for name, make in rows.items():
        results[name] = [time_steps(make(b, s), args.steps, args.repeats) * 1000 for s, b in cases]
    floor = results[next(iter(rows))]
    print(
        f"EfficientNet-Lite0, channel {args.layer}:{args.channel}, {args.threads} threads, "
        f"min of {args.repeats} x {args.steps} steps; ms/step (ratio to floor)"
    )
    print("| what | " + " | ".join(f"{s} px b{b}" for s, b in cases) + " |")
    print("|---|" + "---|" * len(cases))
    for name, ms in results.items():
        cells = " | ".join(f"{m:.0f} ({m / f:.2f}x)" for m, f in zip(ms, floor, strict=True))
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
