"""The README's picture of concept atoms: each atom's visualization over its two top dataset crops.

    featurevis concepts lite0 -l _blocks.8 --method nmf --k 16 --size 128 --steps 256 --diversity 0 -o atoms-cat
    python benchmarks/concepts_grid.py atoms-cat _blocks.8~nmf16 docs/images/concept-atoms-nmf16.jpg

Reads the catalog's newest run; tiles are the stored PNGs, nothing is rendered here.
"""

from __future__ import annotations

import argparse

from PIL import Image, ImageDraw

from featurevis.catalog.store import CatalogStore

SIDE, CROP, COLS = 128, 64, 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("catalog")
    ap.add_argument("unit_set", help="e.g. _blocks.8~nmf16")
    ap.add_argument("out")
    args = ap.parse_args()
    tiles = []
    with CatalogStore(args.catalog, readonly=True) as s:
        run = s.runs()[-1]["run"]
        for r in s.channels(run, args.unit_set):
            crops = [e for e in s.examples(run, args.unit_set, r["channel"]) if e["kind"] == "crop"][:2]
            vis = Image.open(f"{args.catalog}/{r['vis']}").convert("RGB")
            tiles.append((r["channel"], vis, [Image.open(f"{args.catalog}/{e['file']}").convert("RGB") for e in crops]))
    cell = SIDE + CROP + 14
    img = Image.new("RGB", (COLS * (SIDE + 6), -(-len(tiles) // COLS) * cell), "white")
    draw = ImageDraw.Draw(img)
    for i, (atom, vis, crops) in enumerate(tiles):
        x, y = (i % COLS) * (SIDE + 6), (i // COLS) * cell
        img.paste(vis.resize((SIDE, SIDE)), (x, y))
        for j, c in enumerate(crops):
            img.paste(c.resize((CROP, CROP)), (x + j * CROP, y + SIDE))
        draw.text((x + 2, y + SIDE + CROP), f"atom {atom}", fill="black")
    img.save(args.out, quality=72)


if __name__ == "__main__":
    main()
