"""The catalog's fidelity scores on a real catalog: their distributions, how they correlate, and
whether they separate channels a person calls clear from noisy ones.

    featurevis catalog build -m lite0 --layers _blocks.8,_blocks.12 --size 96 --steps 128 \
        --no-negative -o CATALOG
    featurevis score CATALOG
    python benchmarks/scores.py CATALOG --picks benchmarks/scores_picks.json \
        --histograms docs/images/scores_hist.png --extremes docs/images/scores_extremes.jpg
    python benchmarks/scores.py CATALOG --shuffled   # the 2AFC with another channel's picture

``--picks`` names, per layer, the channels picked by eye as ``clear`` and ``noisy`` (before the
scores were computed). Prints Markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from featurevis.catalog.scores import score_rows, spearman
from featurevis.catalog.store import SCORE_COLUMNS, SCORES

LABELS = {key: label for key, label, _ in SCORES}


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a clear channel's score > a noisy one's), ties half: the Mann-Whitney AUC."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def histogram_sheet(by_layer: dict[str, dict[str, list[float]]], path: Path, bins: int = 20) -> None:
    """One small histogram per (layer, score), drawn with Pillow (no plotting library needed)."""
    keys = [k for k in SCORE_COLUMNS if any(v[k] for v in by_layer.values())]
    shown = {
        layer: {
            k: [math.log10(v) for v in vals if v > 0] if k == "activation_ratio" else vals for k, vals in cols.items()
        }
        for layer, cols in by_layer.items()
    }
    cw, ch, pad = 220, 130, 26
    sheet = Image.new("RGB", (cw * len(keys), (ch + pad) * len(by_layer) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (layer, cols) in enumerate(shown.items()):
        for c, key in enumerate(keys):
            vals = cols[key]
            x0, y0 = c * cw, r * (ch + pad)
            label = "log10 activation ratio" if key == "activation_ratio" else LABELS[key]
            draw.text((x0 + 6, y0 + 4), f"{layer} {label} (n={len(vals)})", fill="black")
            if not vals:
                continue
            lo, hi = min(vals), max(vals)
            hi = hi if hi > lo else lo + 1e-6
            counts = [0] * bins
            for v in vals:
                counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
            top, w = max(counts), (cw - 20) / bins
            for b, n in enumerate(counts):
                h = (ch - 30) * n / top
                bx = x0 + 10 + b * w
                draw.rectangle([bx, y0 + pad + ch - 30 - h, bx + w - 1, y0 + pad + ch - 30], fill=(70, 110, 190))
            draw.text((x0 + 8, y0 + pad + ch - 26), f"{lo:.3g}", fill="black")
            draw.text((x0 + cw - 60, y0 + pad + ch - 26), f"{hi:.3g}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def extremes_sheet(folders: list[str], score: str, path: Path, n: int = 4) -> None:
    """Per layer, the ``n`` channels with the highest and the lowest ``score``: each row is the
    visualization, then its three top crops, then its three bottom crops (what the 2AFC compares)."""
    from featurevis.catalog.store import CatalogStore

    side, rows = 72, []
    for folder in folders:
        with CatalogStore(folder, readonly=True) as store:
            for run in store.runs():
                have = store.scores(run["run"])
                for layer in {key[0] for key in have}:
                    ranked = sorted((k for k in have if k[0] == layer and have[k][score] is not None),
                                    key=lambda k: have[k][score], reverse=True)  # fmt: skip
                    for key in ranked[:n] + ranked[-n:]:
                        c = store.channel(run["run"], *key)
                        ex = store.examples(run["run"], *key)
                        files = [c["vis"], *[e["file"] for e in ex if e["kind"] == "crop"][:3]]
                        files += [e["file"] for e in ex if e["kind"] == "bottom"][:3]
                        label = f"{layer}:{key[1]} {LABELS[score]} {have[key][score]:.2f}"
                        rows.append((label, [Path(folder) / f for f in files]))
    sheet = Image.new("RGB", (7 * (side + 4) + 4, len(rows) * (side + 18) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, files) in enumerate(rows):
        y = r * (side + 18) + 2
        draw.text((4, y), label + "   (visualization | top crops | bottom crops)", fill="black")
        for i, f in enumerate(files):
            with Image.open(f) as im:
                sheet.paste(im.convert("RGB").resize((side, side)), (4 + i * (side + 4) + (8 if i > 3 else 0), y + 14))
    sheet.save(path, quality=60) if path.suffix.lower() in (".jpg", ".jpeg") else sheet.save(path, optimize=True)


def shuffled_baseline(folder: str) -> None:
    """The 2AFC score of each channel with the *next* channel's visualization as its reference:
    what the score gives a picture of another unit (chance in principle: 0.5)."""
    from featurevis.catalog import scores as S
    from featurevis.catalog.build import load_model_spec
    from featurevis.catalog.store import CatalogStore
    from featurevis.core.images import load_image

    sim = S.similarity_model()
    with CatalogStore(folder, readonly=True) as store:
        for run in store.runs():
            model = load_model_spec(json.loads(run["settings"])["model"])
            have = store.scores(run["run"])
            for layer in sorted({k[0] for k in have}):
                chans = sorted(k[1] for k in have if k[0] == layer)
                real, other = [], []
                for i, c in enumerate(chans):
                    ex = store.examples(run["run"], layer, c)
                    top = torch.cat([load_image(Path(folder) / e["file"]) for e in ex if e["kind"] == "crop"])
                    bottom = torch.cat([load_image(Path(folder) / e["file"]) for e in ex if e["kind"] == "bottom"])
                    vis = load_image(
                        Path(folder) / store.channel(run["run"], layer, chans[(i + 1) % len(chans)])["vis"]
                    )
                    u = S.score_unit(model, S.unit_objective(layer, c), vis, top=top, bottom=bottom, similarity=sim)
                    real.append(have[(layer, c)]["mis"])
                    other.append(u.mis)
                better = sum(r > o for r, o in zip(real, other, strict=True)) / len(real)
                print(
                    f"| {layer} | {len(real)} | {sum(real) / len(real):.3f} | {sum(other) / len(other):.3f} | "
                    f"{better:.2f} |"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("catalogs", nargs="+", help="catalog folders (their scored units are pooled)")
    ap.add_argument("--picks", type=Path, help="JSON: {layer: {clear: [...], noisy: [...]}}")
    ap.add_argument("--histograms", type=Path, help="PNG of each score's histogram per layer")
    ap.add_argument("--extremes", type=Path, help="PNG of the channels with the highest and lowest 2AFC score")
    ap.add_argument("--shuffled", action="store_true", help="2AFC with another channel's picture as the reference")
    args = ap.parse_args()
    if args.shuffled:
        print("| layer | channels | 2AFC, own visualization | 2AFC, next channel's visualization | own > next |")
        print("|---|---|---|---|---|")
        for folder in args.catalogs:
            shuffled_baseline(folder)
        return
    if args.extremes:
        extremes_sheet(args.catalogs, "mis", args.extremes)
    rows = [r for folder in args.catalogs for r in score_rows(folder) if r["scored"]]
    layers = sorted({r["layer"] for r in rows}, key=lambda n: [int(p) if p.isdigit() else p for p in n.split(".")])
    by_layer = {
        layer: {k: [r[k] for r in rows if r["layer"] == layer and r[k] is not None] for k in SCORE_COLUMNS}
        for layer in layers
    }
    print("## Distributions\n")
    print("| layer | score | n | mean | median | min | max |")
    print("|---|---|---|---|---|---|---|")
    for layer, cols in by_layer.items():
        for k, vals in cols.items():
            if not vals:
                n_units = sum(r["layer"] == layer for r in rows)
                print(f"| {layer} | {LABELS[k]} | 0 | not applicable to its {n_units} channels | | | |")
                continue
            t = torch.tensor(vals)
            print(
                f"| {layer} | {LABELS[k]} | {len(vals)} | {t.mean():.3f} | {t.median():.3f} | {t.min():.3f} | "
                f"{t.max():.3f} |"
            )
    if args.histograms:
        histogram_sheet(by_layer, args.histograms)
        print(f"\nhistograms: {args.histograms}")
    keys = [k for k in SCORE_COLUMNS if any(r[k] is not None for r in rows)]
    for layer in [*layers, "all"]:
        chosen = [r for r in rows if layer in ("all", r["layer"])]
        print(f"\n## Spearman correlations between the scores, {layer} ({len(chosen)} channels)\n")
        print("| | " + " | ".join(LABELS[k] for k in keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for a in keys:
            cells = []
            for b in keys:
                pairs = [(r[a], r[b]) for r in chosen if r[a] is not None and r[b] is not None]
                rho = spearman(torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs]))
                cells.append("–" if rho is None or math.isnan(rho) else f"{rho:+.2f}")
            print(f"| {LABELS[a]} | " + " | ".join(cells) + " |")
    if args.picks:
        picks = json.loads(args.picks.read_text())
        print("\n## Channels picked by eye: clear vs noisy\n")
        head = " | ".join(f"{LABELS[k]}: clear, noisy, AUC" for k in keys)
        print(f"| layer | clear / noisy (scored) | {head} |")
        print("|---" * (len(keys) + 2) + "|")
        for layer, sides in picks.items():
            got = {r["channel"]: r for r in rows if r["layer"] == layer}
            clear = [got[c] for c in sides["clear"] if c in got]
            noisy = [got[c] for c in sides["noisy"] if c in got]
            cells = []
            for k in keys:
                pos = [r[k] for r in clear if r[k] is not None]
                neg = [r[k] for r in noisy if r[k] is not None]
                if not pos or not neg:
                    cells.append("–")
                    continue
                mp, mn = sum(pos) / len(pos), sum(neg) / len(neg)
                cells.append(f"{mp:.3f}, {mn:.3f}, **{auc(pos, neg):.2f}**")
            print(f"| {layer} | {len(clear)} / {len(noisy)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
