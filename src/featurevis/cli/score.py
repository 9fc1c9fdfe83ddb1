"""``featurevis score CATALOG``: fidelity scores for every unit of a catalog that lacks them
(activation ratio, transfer, 2AFC, path check, diversity; see :mod:`featurevis.catalog.scores`),
stored in the catalog and optionally exported as CSV or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import add_device


def _export_path(text: str) -> Path:
    from ..catalog.scores import check_export

    return check_export(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", type=Path, help="catalog folder (made by featurevis catalog build)")
    p.add_argument("--export", metavar="FILE", default=None, help="write every unit's scores to FILE (.csv or .json)")
    p.add_argument(
        "--similarity",
        default="efficientnet_lite1",
        metavar="MODEL",
        help="zoo network whose features judge the 2AFC score's similarity (default efficientnet_lite1)",
    )
    add_device(p)
    p.add_argument("-q", "--quiet", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..catalog.scores import check_catalog, export_scores, score_catalog
    from ..zoo import zoo_entry

    export = _export_path(args.export) if args.export is not None else None  # all before any model loads
    check_catalog(args.catalog)
    zoo_entry(args.similarity)
    report = score_catalog(args.catalog, similarity=args.similarity, device=args.device, progress=args.progress)
    note = " (interrupted: run again to finish)" if report.interrupted else ""
    print(f"catalog {report.folder}: scored {report.scored} units, {report.skipped} already scored{note}")
    if export is not None:
        print(f"wrote {export_scores(args.catalog, export)}")
    return 130 if report.interrupted else 0
