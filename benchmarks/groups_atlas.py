"""Neuron-group and activation-atlas figures on lite0.

    python benchmarks/groups_atlas.py quality [--layer _blocks.8]
    python benchmarks/groups_atlas.py speed [--images 300] [--per-image 16] [--layer _blocks.10]
    python benchmarks/groups_atlas.py grid [--layer _blocks.8] [--cells 7]
    python benchmarks/groups_atlas.py atlas [--layer _blocks.10] [--grid 8] [--steps 64]

``quality``: for each of scikit-image's four colour photos, the relative NMF reconstruction
error of its activations at LAYER for 1, 2, 4, 6, 8 and 12 groups (``fv.groups`` with one
render step: the factorization is what is measured), and for 6 groups rendered at 64 px, 96
steps, how often a group's picture points along its own direction more than along the other
groups' (top-1 of the cosine of the picture's mean activation vector; chance is 1/6), with
the mean cosine to its own direction and to the others.

``speed``: sample collection (``core.samples.layer_samples`` with ``per_image`` random
positions) over IMAGES augmented crops of the sample photos fed at 224 px, plain and with the
class attribution a class atlas needs (a forward and backward pass through the whole
network), then UMAP (umap-learn, cosine metric, as ``fv.atlas`` runs it) on the samples.
Times depend on the machine and its load: report them with both.

``grid`` and ``atlas``: an activation grid of chelsea (64 px cells, 128 steps) and an atlas of
the augmented sample photos (48 px cells); for each picture, the cosine of its mean activation
vector to its own cell's vector and to the other cells', and how often its own is the highest.
"""

from __future__ import annotations

import argparse
import time

import torch

import featurevis as fv
from featurevis.core.photos import named_sample_photos, random_crops
from featurevis.core.samples import layer_samples
from featurevis.core.visualize import direction_scores


def quality(args: argparse.Namespace) -> None:
    model = fv.load_model("lite0")
    counts = (1, 2, 4, 6, 8, 12)
    print(
        f"| photo | {' | '.join(f'error, {k} groups' for k in counts)} "
        "| top-1 own direction (6 groups) | cos own / others |"
    )
    print(f"|---|{'---|' * len(counts)}---|---|")
    for name, photo in named_sample_photos():
        errors = [fv.groups(model, photo, args.layer, groups=k, size=32, steps=1, progress=False).error for k in counts]
        r = fv.groups(model, photo, args.layer, groups=6, size=64, steps=96, progress=False)
        s = direction_scores(model, r.images, args.layer, r.directions)
        own = s.diag()
        others = (s.sum(1) - own) / (len(own) - 1)
        top1 = (s.argmax(1) == torch.arange(len(own))).float().mean()
        cells = " | ".join(f"{e:.3f}" for e in errors)
        print(f"| {name} | {cells} | {top1:.2f} | {own.mean():.2f} / {others.mean():.2f} |", flush=True)


def speed(args: argparse.Namespace) -> None:
    import umap

    model = fv.load_model("lite0")
    photos = [t for _, t in named_sample_photos()]

    def crops():
        g = torch.Generator().manual_seed(0)
        return (random_crops(photos, 1, model.input_size, g) for _ in range(args.images))

    for what, cls in (("plain", None), ("class attribution", model.class_index("tabby"))):
        start = time.perf_counter()
        samples = layer_samples(model, crops(), args.layer, per_image=args.per_image, total=args.images,
                                attribute_to=cls, progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
        print(f"collect ({what}): {len(samples)} samples from {args.images} images in {seconds:.1f} s: "
              f"{len(samples) / seconds:.0f} samples/s, {args.images / seconds:.1f} images/s", flush=True)  # fmt: skip
    for m in (1000, len(samples)):
        start = time.perf_counter()
        umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0).fit_transform(
            samples.values[:m].numpy()
        )
        print(f"UMAP of {m} x {samples.values.shape[1]} samples: {time.perf_counter() - start:.1f} s", flush=True)


def _self_scores(model, images, layer, directions) -> str:
    s = direction_scores(model, images, layer, directions)
    own = s.diag()
    others = (s.sum(1) - own) / (len(own) - 1)
    top1 = (s.argmax(1) == torch.arange(len(own))).float()
    n = len(own)
    return f"own vector highest in {int(top1.sum())} of {n} cells; cos own {own.mean():.2f}, others {others.mean():.2f}"


def grid(args: argparse.Namespace) -> None:
    model = fv.load_model("lite0")
    photo = dict(named_sample_photos())["chelsea"]
    r = fv.activation_grid(model, photo, args.layer, cells=args.cells, progress=False)
    print(
        f"activation grid, chelsea, {args.layer}, {r.rows}x{r.cols}: "
        + _self_scores(model, r.images, args.layer, r.vectors)
    )


def atlas(args: argparse.Namespace) -> None:
    model = fv.load_model("lite0")
    r = fv.atlas(model, args.layer, grid=args.grid, steps=args.steps, progress=False)
    t = r.timings
    print(f"atlas, {args.layer}, {r.settings['images']}, {t['samples']} samples, {len(r.cells)} of "
          f"{args.grid}x{args.grid} cells: {_self_scores(model, r.images, args.layer, r.directions)}")  # fmt: skip
    r.save(f"atlas-{args.layer}-{args.grid}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("quality", "speed", "grid", "atlas"))
    ap.add_argument("--layer", default=None)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--per-image", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cells", type=int, default=7)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--steps", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.layer = args.layer or ("_blocks.8" if args.what in ("quality", "grid") else "_blocks.10")
    {"quality": quality, "speed": speed, "grid": grid, "atlas": atlas}[args.what](args)


if __name__ == "__main__":
    main()
