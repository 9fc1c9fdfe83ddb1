"""``featurevis concepts``: fit concept atoms (NMF or a TopK sparse autoencoder) to a layer's
activations and catalog each atom like a channel (resumable), browsed with ``featurevis serve``."""

from __future__ import annotations

import argparse

from .args import add_common, non_negative_int
from .catalog import add_catalog_settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_catalog_settings(p, "atom")
    p.add_argument("-l", "--layer", required=True, help="the layer whose activations are factored (e.g. _blocks.8)")
    p.add_argument(
        "--images",
        default=None,
        help="folder of images to fit on (default: scikit-image's sample photos, as a catalog's dataset), "
        "each also seen in --crops random crops",
    )
    p.add_argument("--method", default="nmf", help="nmf (non-negative parts) or sae (TopK sparse autoencoder)")
    p.add_argument("--k", type=int, default=64, help="number of atoms (default %(default)s)")
    p.add_argument(
        "--active", type=int, default=8, help="sae: latents active per sample, its TopK (default %(default)s)"
    )
    p.add_argument("--sae-steps", type=int, default=2000, help="sae: Adam steps of training (default %(default)s)")
    p.add_argument(
        "--crops", type=non_negative_int, default=64, help="random crops of the images added to the fit (default 64)"
    )
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from ..catalog.concepts import build_concepts

    r = build_concepts(
        args.model,
        args.output,
        layer=args.layer,
        method=args.method,
        k=args.k,
        weights=args.weights,
        images=args.images,
        size=args.size,
        steps=args.steps,
        batch=args.batch,
        diversity=args.diversity,
        top_k=args.top_k,
        topk=args.active,
        crops=args.crops,
        sae_steps=args.sae_steps,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
        scores=not args.no_scores,
    )
    f = r.figures
    fit = "fitted" if r.fitted else "found in the catalog"
    print(
        f"{r.unit_set} ({fit}): explained variance {f['explained_variance']:.3f}, relative error {f['error']:.3f} "
        f"on {f['samples']} positions; rendered {r.atoms} atoms in {r.seconds:.0f} s, {r.skipped} already done; "
        f"catalog {r.folder} run {r.run}; browse: featurevis serve {r.folder}"
    )
    return 0
