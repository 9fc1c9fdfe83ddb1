"""Caricature and feature accentuation on the four sample photos: do they do what they promise?

    python benchmarks/explain_photo_quality.py [--threads 1] [--size 128] [--steps 256]
        [--accent-size 128] [--accent-steps 128]

Caricature (Lucid's recipe, :func:`featurevis.caricature`): for each of scikit-image's chelsea,
coffee, astronaut and rocket, one caricature per lite0 layer (``_blocks.2, _blocks.5,
_blocks.8, _blocks.12``, one batch); printed is the cosine of the image's activations at that
layer to the photo's at the start (noise) and at the end, and, for scale, the cosine that a
plain render of a channel of the layer (``LAYER:7``, the standard render at the photo's shape)
reaches.

Accentuation (Hamblin et al. 2024, :func:`featurevis.accentuate`): each photo's own top-1 class
raised at three strengths of the pull back to the photo; printed are the class logit before
and after (on the 8-bit image) and the SSIM to the photo. Timings are not the point (and this
machine's were taken under other jobs' load).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import featurevis as fv
from featurevis.core import objectives as O
from featurevis.core.images import fit_size
from featurevis.core.params import make_param
from featurevis.core.photos import named_sample_photos
from featurevis.core.transforms import standard
from featurevis.core.visualize import visualize
from featurevis.recipes.caricature import activation_cosines

LAYERS = ["_blocks.2", "_blocks.5", "_blocks.8", "_blocks.12"]
REGS = (0.25, 1.0, 4.0)


def plain_render(model: fv.FeatureModel, layer: str, hw: tuple[int, int], steps: int) -> torch.Tensor:
    """The standard render of channel 7 of ``layer`` at the photo's shape (``hw``)."""
    param = make_param("fourier", 1, hw)
    tf = standard(max(hw))
    return visualize(
        model, O.channel(layer, 7), size=hw, steps=steps, param=param, transforms=tf, progress=False
    ).images


def caricatures(model: fv.FeatureModel, photos: list, size: int, steps: int) -> None:
    print(f"\nCaricature, lite0, {size} px, {steps} steps, init noise, cossim_pow 1: cosine start -> end")
    print("| photo | " + " | ".join(LAYERS) + " |")
    print("|---|" + "---|" * len(LAYERS))
    ends: dict[str, list[float]] = {n: [] for n in LAYERS}
    plains: dict[str, list[float]] = {n: [] for n in LAYERS}
    renders = {}
    for name, photo in photos:
        r = fv.caricature(model, photo, LAYERS, size=size, steps=steps, progress=False)
        hw = tuple(r.photo.shape[-2:])
        if hw not in renders:  # a plain render of one channel per layer at this shape, for scale
            renders[hw] = torch.cat([plain_render(model, n, hw, steps) for n in LAYERS])
        plain = activation_cosines(model, renders[hw], r.photo, LAYERS)
        cells = []
        for i, n in enumerate(LAYERS):
            ends[n].append(r.cosine[i])
            plains[n].append(plain[i])
            cells.append(f"{r.cosine_start[i]:.2f} -> **{r.cosine[i]:.2f}** (render {plain[i]:.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    mean = [f"**{statistics.mean(ends[n]):.2f}** (render {statistics.mean(plains[n]):.2f})" for n in LAYERS]
    print("| mean | " + " | ".join(mean) + " |")


def accentuations(model: fv.FeatureModel, photos: list, size: int, steps: int) -> None:
    print(f"\nAccentuation, lite0, {size} px, {steps} steps: the photo's top-1 class logit before -> after, SSIM")
    print("| photo | class | " + " | ".join(f"reg {r:g}" for r in REGS) + " |")
    print("|---|---|" + "---|" * len(REGS))
    ssims: dict[float, list[float]] = {r: [] for r in REGS}
    rises: dict[float, list[float]] = {r: [] for r in REGS}
    for name, photo in photos:
        small = fit_size(photo, size)
        top = int(model.predict(small.to(model.device))[0].argmax())
        cells = []
        for reg in REGS:
            r = fv.accentuate(model, photo, f"class:{top}", reg=reg, size=size, steps=steps, progress=False)
            ssims[reg].append(r.ssim)
            rises[reg].append(r.target_end - r.target_start)
            cells.append(f"{r.target_start:.1f} -> {r.target_end:.1f}, SSIM {r.ssim:.3f}")
        print(f"| {name} | {top} {model.class_name(top)} | " + " | ".join(cells) + " |")
    mean = [f"rise {statistics.mean(rises[r]):+.1f}, SSIM {statistics.mean(ssims[r]):.3f}" for r in REGS]
    print("| mean | | " + " | ".join(mean) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=128, help="caricature working side")
    ap.add_argument("--steps", type=int, default=256, help="caricature steps")
    ap.add_argument("--accent-size", type=int, default=128)
    ap.add_argument("--accent-steps", type=int, default=128)
    ap.add_argument("--skip", choices=("caricature", "accentuate"), default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("lite0")
    photos = named_sample_photos()
    if args.skip != "caricature":
        caricatures(model, photos, args.size, args.steps)
    if args.skip != "accentuate":
        accentuations(model, photos, args.accent_size, args.accent_steps)


if __name__ == "__main__":
    main()
