"""Does saliency fall on the cat? Box concentration of each map on scikit-image's chelsea.

    python benchmarks/saliency_quality.py [--threads 1] [--out saliency-chelsea.png]

For the photo at several working sizes, lite0's top class (Egyptian cat) is explained by each
map of :func:`featurevis.recipes.saliency`; printed is the mean saliency inside the cat's face box
divided by (a) the mean everywhere else and (b) the mean in a background strip at the right
edge. 1.0 means no preference; the boxes are those of ``tests/test_saliency.py``.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis.recipes.saliency import MAPS

FACE = (100 / 451, 40 / 300, 370 / 451, 290 / 300)
BACKGROUND = (390 / 451, 0.0, 1.0, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="saliency-chelsea.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from skimage import data

    photo = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    model = fv.load_model("lite0")
    print("| size | p(cat) | " + " | ".join(MAPS) + " |")
    print("|---|---|" + "---|" * len(MAPS))
    for size in (224, 320, None):
        r = fv.saliency(model, photo, size=size)
        cells = [f"{r.box_concentration(k, FACE):.2f} / {r.box_concentration(k, FACE, BACKGROUND):.2f}" for k in MAPS]
        h, w = r.photo.shape[-2:]
        print(f"| {w}x{h} | {r.probability:.0%} | " + " | ".join(cells) + " |")
        if size == 320:
            r.save(args.out)


if __name__ == "__main__":
    main()
