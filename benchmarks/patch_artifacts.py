"""Patch-grid artifacts of vision-transformer renders, by transform set, in one run. Needs timm.

    python benchmarks/patch_artifacts.py [--model vit_small_patch16_224] [--steps 64]

A ViT cuts its input into a fixed grid of patches; an image optimized at one alignment grows a
checkerboard with the patch's period. The figure is the *periodic energy*: fold the (grey,
mean-removed) image into its patch-size tiles, average them, and divide the variance of that
average tile by the image's variance. An image with no period-P structure scores about
1/(number of tiles) (0.005 at 224 px, 16-px patches); a patch-grid artifact scores far higher.
Random weights: the grid comes from the patch embedding's stride, not from training, so it shows
without pretrained weights (none can be downloaded here). Rows: no transforms; jitter by whole
patches only (a control: shifts the grid onto itself); the standard set; the patch set
(featurevis' default for patch models).
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis.core import transforms as T


class WholePatchJitter:
    """Shift by 0 or P pixels only: moves the image by whole patches, so the grid stays aligned."""

    def __init__(self, p: int):
        self.p = p

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        ox, oy = (self.p * int(v) for v in torch.randint(0, 2, (2,), generator=g))
        h, w = x.shape[-2:]
        return x[..., oy : h - self.p + oy, ox : w - self.p + ox]


def periodic_energy(images: torch.Tensor, p: int) -> float:
    g = images.mean(1)
    g = g - g.mean((1, 2), keepdim=True)
    b, h, w = g.shape
    tiles = g[:, : h // p * p, : w // p * p].reshape(b, h // p, p, w // p, p).mean((1, 3))
    return float((tiles.var((1, 2)) / g.var((1, 2))).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_small_patch16_224")
    ap.add_argument("--targets", default="blocks.6.mlp.fc1:100,blocks.9.mlp.fc1:7")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model(f"timm:{args.model}", weights="random")
    p = model.tokens.patch[0]
    sets = {
        "none": T.none(),
        f"jitter by whole patches ({p} px)": T.Compose([T.Pad(p), WholePatchJitter(p)]),
        "standard": T.standard(224),
        "patch (default)": T.patch(224, p),
    }
    floor = 1 / (224 // p) ** 2
    print(f"{args.model}, random weights, {args.steps} steps, 224 px; periodic energy (no grid ~ {floor:.4f})")
    for target in args.targets.split(","):
        for name, tf in sets.items():
            t0 = time.perf_counter()
            r = fv.render(model, target, steps=args.steps, transforms=tf, progress=False, seed=1)
            print(
                f"{target:<24} {name:<30} {periodic_energy(r.images, p):.4f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
