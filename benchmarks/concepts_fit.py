"""NMF against a TopK sparse autoencoder as concept atoms of lite0 ``_blocks.8``: reconstruction
and explained variance against the number of atoms k.

    python benchmarks/concepts_fit.py [--threads 1] [--crops 64] [--sae-steps 2000]

The samples are what ``featurevis concepts`` fits to by default: every position of the catalog's
dataset (scikit-image's 17 bundled samples at 224 px, a 14×14 map each) plus ``--crops`` random
crops of them. The even-numbered images (and crops of them) are fitted; the odd-numbered ones
are held out, and both are reported: relative error ``||X − X̂|| / ||X||`` and explained variance
``1 − ||X − X̂||² / ||X − X̄||²`` in the layer's channel space (112 channels). NMF reconstructs a
sample from all k parts (non-negative weights; the signed layer split as [relu X, relu −X]); the
SAE from only ``topk`` latents per sample (8, or k/2 below 16), so at equal k it is the sparser
code. NMF's k is at most the channel count; an SAE may be overcomplete.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis.catalog.build import load_dataset
from featurevis.catalog.concepts import fit_samples
from featurevis.core.factorize import nmf
from featurevis.core.sae import reconstruction_figures, train_sae
from featurevis.core.samples import layer_samples

LAYER = "_blocks.8"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", type=int, default=64)
    ap.add_argument("--sae-steps", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("lite0")
    _, data = load_dataset(None, 224)
    train, _ = fit_samples(model, LAYER, data[0::2], crops=args.crops)
    held = layer_samples(model, list(data[1::2].split(1)), LAYER, side=224).values
    print(f"{len(train)} training samples, {len(held)} held out, {train.shape[1]} channels\n")
    print("| k | NMF error | NMF EV | NMF held-out EV | SAE topk | SAE error | SAE EV | SAE held-out EV | dead |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in (4, 8, 16, 32, 64, 112, 256):
        cells = [str(k)]
        if k <= train.shape[1]:
            f = nmf(train, k)
            err, ev = reconstruction_figures(train, f.weights @ f.directions)
            _, hev = reconstruction_figures(held, f.transform(held) @ f.directions)
            cells += [f"{err:.3f}", f"{ev:.3f}", f"{hev:.3f}"]
        else:
            cells += ["–"] * 3
        topk = 8 if k >= 16 else k // 2
        s = train_sae(train, k, topk=topk, steps=args.sae_steps)
        _, hev = reconstruction_figures(held, s.reconstruct(held))
        cells += [str(topk), f"{s.error:.3f}", f"{s.explained_variance:.3f}", f"{hev:.3f}", str(s.dead)]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
