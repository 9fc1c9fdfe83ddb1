"""``featurevis serve``: the catalog explorer, a local web app."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import FeaturevisError
from .args import port


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder", nargs="?", default="featurevis-catalog", help="catalog folder (default ./featurevis-catalog)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port, 1..65535 (default 8000)")


def run(args: argparse.Namespace) -> int:
    from ..catalog.explorer.app import create_app
    from ..catalog.store import DB_NAME

    folder = Path(args.folder)
    if not (folder / DB_NAME).is_file():
        raise FeaturevisError(f"{folder}: no catalog here; build one: featurevis catalog build -m lite0 -o {folder}")
    app = create_app(folder)
    try:
        import uvicorn
    except ImportError:
        raise FeaturevisError("the explorer needs uvicorn: pip install 'featurevis[web]'") from None
    print(f"featurevis explorer: http://{args.host}:{args.port}/  (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
