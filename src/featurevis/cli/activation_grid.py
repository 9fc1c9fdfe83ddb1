"""``featurevis activation-grid``: one visualization per cell of a photo's activation map (Lucid)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..recipes.groups import DEFAULT_CELL_SIZE, DEFAULT_GRID_STEPS, activation_grid
from .args import add_common, add_output, add_size, add_steps, positive_int
from .groups import add_photo_and_layer, run_on_photo


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_photo_and_layer(p)
    p.add_argument(
        "--cells",
        type=positive_int,
        default=None,
        help="at most N cells a side: the map is average-pooled to N x N (default: every cell; "
        "lite0's _blocks.8 has 14 x 14, try --cells 7 on a CPU)",
    )
    add_size(p, "side of each cell's visualization in px (default %(default)s)", DEFAULT_CELL_SIZE)
    add_steps(p, "render steps (default %(default)s)", DEFAULT_GRID_STEPS)
    add_output(p, "grid image (default PHOTO-grid.png)", lambda args: f"{Path(args.photo).stem}-grid.png")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    r = run_on_photo(args, activation_grid, cells=args.cells)
    r.save(args.output)
    note = " (interrupted: the cells not rendered are white)" if r.interrupted else ""
    print(f"wrote {args.output}: the photo and {r.rows}x{r.cols} cells of {r.layer}{note}")
    return 130 if r.interrupted else 0
