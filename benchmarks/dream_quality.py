"""DeepDream figures: objective gain and SSIM on sample photos, the guided-dream measure, and
peak memory of a tiled 4000x3000 dream.

    python benchmarks/dream_quality.py [--out dream-figures] [--big] [--threads 1]

Needs scikit-image (sample photos and SSIM). Writes before/after PNGs to ``--out``.
- gain: the chosen layer's objective (mean square, evaluated tile by tile at full size) on the
  dream over the same on the photo; SSIM (scikit-image, RGB, data range 1) of dream to photo.
- guided: coffee dreamed with guides chelsea, rocket and astronaut; cosine similarity of each
  result's spatially averaged ``_blocks.10`` features to each guide's. A guide works when its
  own row's diagonal beats both the photo and the dreams guided elsewhere.
- big (``--big``): ``featurevis dream`` on coffee upscaled to 4000x3000, in a child process
  whose peak resident memory is read back; also untiled at 2000x1500 for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

import featurevis as fv
from featurevis.recipes.dream import DEFAULT_LAYER


def photo(name: str) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(
        a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0
    )


def gains(model: fv.FeatureModel, out: Path, layers: list[str]) -> None:
    print("default settings (4 octaves x 10 steps, step 0.01, tile 512), full-size photos")
    print(f"{'photo':<10} {'layer':<11} {'before':>7} {'after':>7} {'gain':>6} {'SSIM':>6} {'seconds':>8}")
    for name in ("coffee", "astronaut"):
        x = photo(name)
        fv.save_image(x, out / f"{name}.png")
        for layer in layers:
            r = fv.dream(model, x, layer, progress=False)
            r.save(out / f"{name}-dream{layer.replace('_blocks', '')}.png")
            s = ssim(x, r.image)
            print(
                f"{name:<10} {layer:<11} {r.before:>7.2f} {r.after:>7.2f} {r.gain:>5.2f}x {s:>6.3f} {r.seconds:>8.1f}",
                flush=True,
            )


def guided(model: fv.FeatureModel, out: Path, layer: str = DEFAULT_LAYER) -> None:
    x = photo("coffee")
    guides = {n: photo(n) for n in ("chelsea", "rocket", "astronaut")}

    def signature(img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(img, [layer])[layer].mean((2, 3))[0]

    dreams = {"(unguided)": fv.dream(model, x, layer, progress=False).image}
    for n, g in guides.items():
        dreams[n] = fv.dream(model, x, layer, guide=g, progress=False).image
        fv.save_image(dreams[n], out / f"coffee-guided-{n}.png")
    print(f"\nguided dreams of coffee at {layer}: cosine of mean features to each guide")
    print(f"{'to guide':<10} {'photo':>7} " + " ".join(f"{k:>11}" for k in dreams))
    for n, g in guides.items():
        sg = signature(g)
        sims = [float(F.cosine_similarity(signature(v), sg, dim=0)) for v in dreams.values()]
        base = float(F.cosine_similarity(signature(x), sg, dim=0))
        print(f"{n:<10} {base:>7.3f} " + " ".join(f"{v:>11.3f}" for v in sims))


def child_peak(cmd: list[str], threads: int) -> tuple[float, float, str]:
    """Run ``cmd``; return (peak RSS in GiB of the largest child so far, seconds, last line)."""
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    last = (r.stdout or r.stderr).strip().splitlines()[-1]
    return peak, time.perf_counter() - t0, last


def big(out: Path, threads: int) -> None:
    src = Image.fromarray((photo("coffee")[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    cli = [sys.executable, "-m", "featurevis.cli", "dream", "-q"]
    print("\ntiled dreams in a child process (peak RSS is the largest child's so far, so run small first)")
    for w, h, extra in [
        (2000, 1500, ["--tile", "512"]),
        (4000, 3000, ["--tile", "512"]),
        (2000, 1500, ["--tile", "2000"]),
    ]:
        path = out / f"coffee-{w}x{h}.jpg"
        src.resize((w, h), Image.Resampling.LANCZOS).save(path, quality=92)
        dst = out / f"coffee-{w}x{h}-dream{extra[-1]}.png"
        peak, secs, last = child_peak([*cli, str(path), "-o", str(dst), *extra], threads)
        print(f"{w}x{h} tile {extra[-1]:>4}: peak RSS so far {peak:.2f} GiB, {secs:.0f} s; {last}", flush=True)
        if (w, h) == (4000, 3000):
            with Image.open(dst) as im:
                im.resize((1000, 750), Image.Resampling.LANCZOS).save(out / "big-dream-downscaled.png")
                im.crop((1600, 1100, 2368, 1868)).save(out / "big-dream-crop-1to1.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="dream-figures", type=Path)
    ap.add_argument("--layers", default=f"_blocks.4,{DEFAULT_LAYER}", help="layers for the gain table")
    ap.add_argument("--big", action="store_true", help="also the 4000x3000 tiled run (minutes)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model = fv.load_model("efficientnet_lite0")
    gains(model, args.out, args.layers.split(","))
    guided(model, args.out)
    if args.big:
        big(args.out, args.threads)


if __name__ == "__main__":
    main()
