"""Sanity checks of lite0 visualizations: cascading randomization per stage, and the transform
robustness ratio of a Fourier + standard-transform render against a pixel render without transforms.

    python benchmarks/sanity_checks.py [--threads 1] [--size 128] [--steps 128] [--row docs/images/x.jpg]

For each unit, :func:`featurevis.randomization_check` (4 stages, seed 0) prints SSIM to the original
image, the cosine of EfficientNet-Lite1's pooled ``_head_act`` features to the original's, and the
original unit's activation on each image; "original, seed 1" is the yardstick (two honest renders
of one unit). Then :func:`featurevis.transform_check` (32 draws) prints the mean objective under
the render's own transform draws, fresh draws of the standard set, none, and the ratio fresh/own.
``--row`` also writes the first unit's randomization row, labelled, for the README.
"""

from __future__ import annotations

import argparse

import torch
from PIL import Image, ImageDraw

import featurevis as fv
from featurevis.core.images import to_pil

UNITS = ("_blocks.4:5", "_blocks.8:12", "_blocks.12:30", "class:285")


def labelled_row(r: fv.RandomizationResult, path: str) -> None:
    """The row of images with each label and its judge cosine under it."""
    tiles = [to_pil(img) for img in r.images]
    w, h = tiles[0].size
    out = Image.new("RGB", (len(tiles) * (w + 4) - 4, h + 30), "white")
    draw = ImageDraw.Draw(out)
    for i, (tile, label) in enumerate(zip(tiles, r.labels, strict=True)):
        out.paste(tile, (i * (w + 4), 0))
        short = label.replace("random down to ", "random to ").replace("._expand_conv", "")
        draw.text((i * (w + 4) + 2, h + 2), short[:24], fill="black")
        draw.text((i * (w + 4) + 2, h + 15), f"cos {r.judge_cosine[i]:.2f} act {r.activation[i]:.3g}", fill="black")
    out.save(path, quality=88)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--row", default=None, help="write the first unit's randomization row here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("lite0")
    common = dict(size=args.size, steps=args.steps, progress=False)
    robust = []
    for n, unit in enumerate(UNITS):
        r = fv.randomization_check(model, unit, stages=4, **common)
        print(f"\n### {unit}\n\n| image | SSIM | lite1 cosine | activation of the original unit |\n|---|---|---|---|")
        for row in zip(r.labels, r.ssim, r.judge_cosine, r.activation, strict=True):
            print(f"| {row[0]} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3g} |", flush=True)
        if n == 0 and args.row:
            labelled_row(r, args.row)
        a = fv.transform_check(model, unit, **common)
        b = fv.transform_check(model, unit, param="pixel", transforms=None, **common)
        robust.append((unit, a, b))
    print(
        "\n| unit | Fourier + standard: own / fresh / none | ratio | pixel, no transforms: own / fresh / none | ratio |"
    )
    print("|---|---|---|---|---|")
    for unit, a, b in robust:
        fa = f"{sum(a.own) / len(a.own):.3g} / {sum(a.fresh) / len(a.fresh):.3g} / {a.untransformed:.3g}"
        fb = f"{sum(b.own) / len(b.own):.3g} / {sum(b.fresh) / len(b.fresh):.3g} / {b.untransformed:.3g}"
        print(f"| {unit} | {fa} | **{a.ratio:.2f}** | {fb} | **{b.ratio:.2f}** |")


if __name__ == "__main__":
    main()
