"""The `catalog` command."""

from __future__ import annotations

import argparse

from ..catalog.build import build_catalog
from .args import _positive, command


def _catalog_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="render every channel of the chosen layers into a catalog folder")
    b.add_argument("model", help="zoo model (lite0) or module:factory / file.py:factory for your own")
    b.add_argument("--weights", default=None, help="checkpoint file for a zoo model (default: zoo lookup)")
    b.add_argument("--layers", default="all", help="comma-separated layer names, or all (default)")
    b.add_argument("--images", default=None, help="folder of dataset images (default: scikit-image samples)")
    b.add_argument("--out", default="featurevis-catalog", help="catalog folder (default ./featurevis-catalog)")
    b.add_argument("--size", type=_positive, default=128, help="render side in px (default 128)")
    b.add_argument("--steps", type=_positive, default=256, help="steps per render (default 256)")
    b.add_argument("--batch", type=_positive, default=16, help="channels rendered together (default 16)")
    b.add_argument("--diversity", type=int, default=3, help="images per channel in the diversity set (0: none)")
    b.add_argument("--no-negative", action="store_true", help="skip the negative images")
    b.add_argument("--top-k", type=_positive, default=6, help="dataset examples kept per channel (default 6)")
    b.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    b.add_argument("--device", default="auto", help="cpu, cuda or auto (in-process builds)")
    b.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run shards on Ray (local without ADDRESS)",
    )
    b.add_argument("--ray-cpus", type=_positive, default=None, help="CPUs of a local Ray cluster (default: all)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


@command("catalog", "build a browsable catalog of every channel of chosen layers", _catalog_args)
def run_catalog(args: argparse.Namespace) -> int:
    report = build_catalog(
        args.model,
        args.out,
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
        progress=not args.quiet,
    )
    rate = f" ({report.per_minute:.1f} channels/min)" if report.channels else ""
    print(
        f"catalog {report.folder} run {report.run}: rendered {report.channels} channels in "
        f"{report.seconds:.0f} s{rate}, {report.skipped} already done; browse: featurevis serve {report.folder}"
    )
    return 0
