"""Milliseconds per render step on vision transformers, against the model's own truncated, frozen
forward+backward, in one run. Needs timm (the transformers environment, see README).

    python benchmarks/vit_speed.py [--models vit_small_patch16_224,vit_base_patch16_224]
                                   [--batches 1,8] [--steps 8] [--repeats 3]

Random weights: only time is measured, and it does not depend on the values. Rows per model and
batch, at 224 px, feature 100 of ``blocks.{depth // 2}.mlp.fc1`` (the default ViT layer):
- floor: timm's module as created, weights frozen, a forward hook that ends the pass right after
  the layer, the feature's mean over the patch tokens, backward to the input only;
- featurevis, no transforms: a whole ``render`` step (Fourier parameterization, objective, Adam);
- featurevis: the same with the default transforms for patch models.
"""

from __future__ import annotations

import argparse
import contextlib

import timm
import torch

import featurevis as fv
from speed import time_steps


class _Stop(Exception):
    pass


def floor_fn(name: str, layer: str, feature: int, batch: int):
    net = timm.create_model(name, pretrained=False).eval().requires_grad_(False)
    cfg = net.pretrained_cfg
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    module = net.get_submodule(layer)
    x = torch.rand(batch, 3, 224, 224, requires_grad=True)
    seen: list[torch.Tensor] = []

    def hook(mod, args, out):
        seen.append(out)
        raise _Stop

    module.register_forward_hook(hook)

    def run(n: int) -> None:
        for _ in range(n):
            seen.clear()
            with contextlib.suppress(_Stop):
                net((x - mean) / std)
            seen[0][:, net.num_prefix_tokens :, feature].mean().backward()
            x.grad = None

    return run


def render_fn(model: fv.FeatureModel, target: str, batch: int, transforms: str):
    def run(n: int) -> None:
        fv.render(model, target, steps=n, batch=batch, size=224, transforms=transforms, progress=False)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vit_small_patch16_224,vit_base_patch16_224")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, 224 px, random weights")
    print(f"{'model':<24} {'batch':>5} {'row':<26} {'ms/step':>9} {'x floor':>8}")
    for name in args.models.split(","):
        fm = fv.load_model(f"timm:{name}", weights="random")
        layer = fm.default_layer
        target = f"{layer}:100"
        for batch in map(int, args.batches.split(",")):
            rows = {
                f"floor ({layer})": floor_fn(name, layer, 100, batch),
                "featurevis, no transforms": render_fn(fm, target, batch, "none"),
                "featurevis (patch transforms)": render_fn(fm, target, batch, "auto"),
            }
            floor = None
            for row, fn in rows.items():
                t = time_steps(fn, args.steps, args.repeats)
                floor = floor or t
                print(f"{name:<24} {batch:>5} {row:<26} {1000 * t:>9.1f} {t / floor:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
