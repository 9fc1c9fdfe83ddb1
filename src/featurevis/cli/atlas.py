"""``featurevis atlas``: an activation atlas of one layer over many image patches (Carter et al. 2019)."""

from __future__ import annotations

import argparse

from ..recipes.atlas import DEFAULT_GRID, DEFAULT_PER_IMAGE, DEFAULT_SIZE, DEFAULT_STEPS, MIN_COUNT, atlas
from .args import add_common, add_model, add_output, add_size, add_steps, model_from_args, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model(p, positional=True)
    p.add_argument("-l", "--layer", default=None, help="a layer with a spatial map (default: the model's default)")
    p.add_argument(
        "--images",
        metavar="DIR",
        default=None,
        help="folder of images, read one at a time (default: random crops/flips of the offline sample photos)",
    )
    p.add_argument("--grid", type=positive_int, default=DEFAULT_GRID, help="cells a side (default %(default)s)")
    p.add_argument(
        "--class",
        dest="class_",
        metavar="C",
        default=None,
        help="class atlas: keep and weight the samples by their attribution to class C (index or name)",
    )
    p.add_argument(
        "--per-image",
        type=positive_int,
        default=DEFAULT_PER_IMAGE,
        help="random positions sampled per image (default %(default)s)",
    )
    p.add_argument(
        "--min-count",
        type=positive_int,
        default=MIN_COUNT,
        help="samples a cell needs to be drawn (default %(default)s)",
    )
    add_size(p, "side of each cell in px (default %(default)s)", DEFAULT_SIZE)
    add_steps(p, "render steps per cell (default %(default)s)", DEFAULT_STEPS)
    add_output(p, "atlas image (default atlas.png)", "atlas.png")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    model = model_from_args(args)
    r = atlas(
        model,
        args.layer,
        args.images,
        grid=args.grid,
        per_image=args.per_image,
        class_=args.class_,
        size=args.size,
        steps=args.steps,
        min_count=args.min_count,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    r.save(args.output)
    t = r.timings
    print(f"samples: {t['samples']} from {r.settings['images']} ({t['samples_per_s']:.0f}/s); UMAP {t['umap_s']:.1f} s")
    if r.class_ is not None:
        print(f"class {r.class_} {r.class_name}: kept {int(r.kept.sum())} samples of the highest positive attribution")
    note = " (interrupted: only the cells rendered are shown)" if r.interrupted else ""
    print(f"wrote {args.output}: {len(r.cells)} of {r.grid}x{r.grid} cells at {r.layer}{note}")
    return 130 if r.interrupted else 0
