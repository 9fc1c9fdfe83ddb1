"""The zoo's CPU convolution rewrites (``Conv2d.rewrites``), on and off, alternating in one run.

    python benchmarks/conv_rewrites.py [--runs 4] [--steps 32] [--threads 2] [--others]

Rows: lite0's forward and backward (input gradient, frozen weights) at the sizes a render's
transforms show it; a whole default render step of a class and of a channel (``_blocks.8:12``)
at batch 1 and 5; with ``--others`` also the forward and backward of the zoo's ResNet-50,
GoogLeNet and InceptionV1 (random weights: the speed does not depend on them). Each case runs
``--runs`` times with the rewrites on and off in turn, so the machine's drift hits both alike;
medians of the per-run means, ms. The rewrites are exact (``tests/test_zoo.py``): at one thread
the renders are the same images bit for bit, at two up to float rounding.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import featurevis as fv
from featurevis.zoo import googlenet, inception_v1, resnet
from featurevis.zoo.convs import Conv2d


def network(model: fv.FeatureModel, size: int, batch: int) -> Callable[[int], None]:
    x0 = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))

    def run(n: int) -> None:
        for _ in range(n):
            x = x0.clone().requires_grad_()
            model(x, ["logits"])["logits"][:, 41].sum().backward()

    return run


def render(model: fv.FeatureModel, target: str, batch: int) -> Callable[[int], None]:
    def run(n: int) -> None:
        fv.render(model, target, batch=batch, steps=n, progress=False)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--others", action="store_true", help="also ResNet-50, GoogLeNet and InceptionV1")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("efficientnet_lite0")
    cases = {
        **{f"network fwd+bwd, {s} px b1": network(model, s, 1) for s in (176, 224, 272)},
        "network fwd+bwd, 224 px b5": network(model, 224, 5),
        "class render step, b1": render(model, "class:41", 1),
        "class render step, b5": render(model, "class:41", 5),
        "channel render step, b1": render(model, "_blocks.8:12", 1),
        "channel render step, b5": render(model, "_blocks.8:12", 5),
    }
    if args.others:
        for name, net in (
            ("ResNet-50", resnet.resnet50()),
            ("GoogLeNet", googlenet.GoogLeNet()),
            ("InceptionV1", inception_v1.InceptionV1()),
        ):
            other = fv.FeatureModel(net.eval(), mean=(0.5,) * 3, std=(0.25,) * 3, name=name)
            cases[f"{name} fwd+bwd, 224 px b1"] = network(other, 224, 1)
    print(f"lite0, {args.threads} threads, {args.runs} alternating runs of {args.steps} steps; median ms per step")
    print("| case | rewrites off | rewrites on | on / off |")
    print("|---|---|---|---|")
    for name, fn in cases.items():
        times: dict[bool, list[float]] = {False: [], True: []}
        for on in (False, True):  # warm-up: kernel plans for both paths
            Conv2d.rewrites = on
            fn(2)
        for _ in range(args.runs):
            for on in (False, True):
                Conv2d.rewrites = on
                t0 = time.perf_counter()
                fn(args.steps)
                times[on].append(1000 * (time.perf_counter() - t0) / args.steps)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"| {name} | {off:.1f} | {on:.1f} | {on / off:.2f} |", flush=True)
    Conv2d.rewrites = True


if __name__ == "__main__":
    main()
