"""``featurevis catalog build``: render every channel of chosen layers into a catalog folder
(resumable; in-process or on Ray), browsed with ``featurevis serve``."""

from __future__ import annotations

import argparse

from .args import (
    add_batch,
    add_common,
    add_model,
    add_output,
    add_size,
    add_steps,
    folder,
    non_negative_int,
    positive_int,
)


def add_catalog_settings(p: argparse.ArgumentParser, unit: str) -> None:
    """What a catalog's renders are made with (model, folder, size, steps, batch, diversity,
    examples): shared with ``featurevis concepts``, whose atoms join the run with the same ones."""
    add_model(
        p, positional=True, what="zoo model, timm:NAME, clip:ARCH[:TAG], or module:factory / file.py:factory for yours"
    )
    add_output(
        p,
        "catalog folder (default ./featurevis-catalog)",
        "featurevis-catalog",
        folder,
        metavar="DIR",
        aliases=["--out"],
    )
    add_size(p, "render side in px (default %(default)s)", 128)
    add_steps(p, "steps per render (default %(default)s)", 256)
    add_batch(p, f"{unit}s rendered together (default %(default)s)", 16)
    p.add_argument(
        "--diversity", type=non_negative_int, default=3, help=f"images per {unit} in the diversity set (0: none)"
    )
    p.add_argument("--top-k", type=positive_int, default=6, help=f"dataset examples kept per {unit} (default 6)")
    p.add_argument(
        "--no-scores", action="store_true", help="skip the fidelity scores (compute them later: featurevis score DIR)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build"], help="build: render every channel of the chosen layers")
    add_catalog_settings(p, "channel")
    p.add_argument("--layers", default="all", help="comma-separated layer names, or all (default)")
    p.add_argument("--images", default=None, help="folder of dataset images (default: scikit-image samples)")
    p.add_argument("--no-negative", action="store_true", help="skip the negative images")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run shards on Ray (local without ADDRESS)",
    )
    p.add_argument("--ray-cpus", type=positive_int, default=None, help="CPUs of a local Ray cluster (default: all)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from ..catalog.build import build_catalog

    report = build_catalog(
        args.model,
        args.output,
        weights=args.weights,
        layers=args.layers,
        images=args.images,
        size=args.size,
        steps=args.steps,
        batch=args.batch,
        diversity=args.diversity,
        negative=not args.no_negative,
        top_k=args.top_k,
        seed=args.seed,
        device=args.device,
        ray=args.ray,
        ray_num_cpus=args.ray_cpus,
        progress=args.progress,
        scores=not args.no_scores,
    )
    rate = f" ({report.per_minute:.1f} channels/min)" if report.channels else ""
    print(
        f"catalog {report.folder} run {report.run}: rendered {report.channels} channels in "
        f"{report.seconds:.0f} s{rate}, {report.skipped} already done; browse: featurevis serve {report.folder}"
    )
    return 0
