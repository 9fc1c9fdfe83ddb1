"""Feature inversion figures: what each depth of lite0 keeps of a photo.

    python benchmarks/invert_quality.py [--photo chelsea] [--size 160] [--steps 300] [--out invert-figures]

For each of :func:`featurevis.core.layers.depth_layers` (shallow to deep) the photo is reconstructed
from noise with the defaults (Fourier parameterization, TV 1, cosine lr from 0.05) and we print a
markdown table of: the relative feature error ``||f(x) - f(x0)||² / ||f(x0)||²`` of the
reconstruction and of a uniform random image (for scale), and the pixel similarity to the photo
(SSIM from scikit-image on RGB with data range 1; PSNR in dB). Writes the strip (photo, then the
reconstructions) to ``--out``. Needs scikit-image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import featurevis as fv
from featurevis.core.layers import depth_layers
from featurevis.recipes.invert import strip


def photo(name: str) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity

    return structural_similarity(
        a[0].permute(1, 2, 0).numpy(), b[0].permute(1, 2, 0).numpy(), channel_axis=2, data_range=1.0
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--photo", default="chelsea", help="scikit-image sample name")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="invert-figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model(args.model)
    img = photo(args.photo)
    print(f"{args.model}, {args.photo} at {args.size} px, {args.steps} steps, {args.threads} thread(s)\n")
    print("| layer | feature error | random image's | ratio | SSIM | PSNR (dB) | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    results = []
    for layer in depth_layers(model):
        r = fv.invert(model, img, layer, size=args.size, steps=args.steps, progress=False)
        results.append(r)
        print(
            f"| `{layer}` | {r.feature_error:.3f} | {r.random_error:.3f} | {r.feature_error / r.random_error:.3f} "
            f"| {ssim(r.image, r.target):.3f} | {r.psnr:.1f} | {r.seconds:.1f} |",
            flush=True,
        )
    out = Path(args.out)
    path = fv.save_image(strip(results), out / f"invert-{args.photo}.png")
    print(f"\nstrip (photo, then shallow to deep): {path}")


if __name__ == "__main__":
    main()
