"""Style transfer figures: Gram-loss drop and speed of optimization (Gatys) vs one pass (Johnson).

    python benchmarks/style_speed.py [--size 256] [--steps 300] [--train-minutes 2.5] [--out style-figures]

1. Gatys (:func:`featurevis.style_transfer`, defaults) on scikit-image pairs: style loss at the
   start and end (drop in %), content loss at the end, seconds.
2. Fast style: :func:`featurevis.train_style_net` with the first pair's style for
   ``--train-minutes`` on the sample photos, then :func:`featurevis.stylize` on the content at the
   same working size. Apply time is the median of 5 passes after a warm-up; the speed ratio is
   optimization seconds / apply seconds at the same size.
Writes content | style | result PNGs to ``--out``. Needs scikit-image.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import featurevis as fv
import featurevis.core.images
from featurevis.core.images import fit_size
from featurevis.core.losses import default_layers, style_grams, style_loss

PAIRS = (("astronaut", "immunohistochemistry"), ("chelsea", "hubble_deep_field"), ("rocket", "coffee"))


def photo(name: str) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def triptych(content: torch.Tensor, style: torch.Tensor, result: torch.Tensor, size: int) -> torch.Tensor:
    c = fit_size(content, size)
    s = F.interpolate(fit_size(style, size), size=c.shape[-2:], mode="bilinear", antialias=True)
    r = F.interpolate(result, size=c.shape[-2:], mode="bilinear", antialias=True)
    return featurevis.core.images.make_grid(torch.cat([c, s, r.clamp(0, 1)]), ncols=3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--train-minutes", type=float, default=2.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="style-figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    model = fv.load_model(args.model)
    print(f"{args.model}, working size {args.size} px, {args.steps} steps, {args.threads} thread(s)\n")
    print("| content | style | style loss start | end | drop | content loss end | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    gatys_seconds = {}
    for c_name, s_name in PAIRS:
        content, style = photo(c_name), photo(s_name)
        r = fv.style_transfer(model, content, style, size=args.size, steps=args.steps, progress=False)
        gatys_seconds[(c_name, s_name)] = r.seconds
        print(
            f"| {c_name} | {s_name} | {r.style_before:.3f} | {r.style_after:.3f} | {100 * r.style_drop:.1f} % "
            f"| {r.content_after:.3f} | {r.seconds:.1f} |",
            flush=True,
        )
        fv.save_image(triptych(content, style, r.image, args.size), out / f"gatys-{c_name}-{s_name}.png")

    c_name, s_name = PAIRS[0]
    content, style = photo(c_name), photo(s_name)
    sn = fv.train_style_net(model, style, minutes=args.train_minutes, progress=False)
    m = sn.meta
    sn.save(out / f"fast-{s_name}.pt")
    x = fit_size(content, args.size)
    fv.stylize(sn, x)  # warm-up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        y = fv.stylize(sn, x)
        times.append(time.perf_counter() - t0)
    apply_s = statistics.median(times)
    layers, _ = default_layers(model)
    grams = style_grams(model, [style], [1.0], layers, args.size)
    with torch.no_grad():
        before = style_loss(model(x, layers), grams).item()
        after = style_loss(model(y, layers), grams).item()
    opt_s = gatys_seconds[(c_name, s_name)]
    print(
        f"\nfast style ({s_name}): trained {m['steps']} steps "
        f"({m['size']} px crops, batch {m['batch']}) in {m['seconds']:.0f} s"
    )
    print(f"style loss of {c_name}: photo {before:.3f} -> one pass {after:.3f}")
    print("\n| method | seconds per image | speed-up |")
    print("|---|---:|---:|")
    print(f"| optimization ({args.steps} steps) | {opt_s:.2f} | 1x |")
    print(f"| fast style (one pass) | {apply_s:.4f} | {opt_s / apply_s:.0f}x |")
    fv.save_image(triptych(content, style, y, args.size), out / f"fast-{c_name}-{s_name}.png")
    print(f"\nimages in {out}/")


if __name__ == "__main__":
    main()
