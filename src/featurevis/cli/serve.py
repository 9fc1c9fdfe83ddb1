"""``featurevis serve``: the catalog explorer, a local web app."""

from __future__ import annotations

import argparse
import errno
import socket
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
    """Serve until Ctrl-C (or SIGTERM): the server then stops taking requests, cancels its jobs
    and waits for the worker, and the process exits 130 (143), as every command does when
    interrupted (uvicorn itself re-raises the signal it caught, for the same reason)."""
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
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    print(f"featurevis explorer: http://{args.host}:{port}/  (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    with sock:
        server.run(sockets=[sock])
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one line saying why not (an unknown host, a port in
    use): checked here because uvicorn reports these by logging and exiting with code 3."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError) as e:
        raise FeaturevisError(f"--host {host!r}: not an address this machine can listen on ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
        sock.bind(address)
    except OSError as e:
        sock.close()
        hint = "; is another server running there? choose another --port" if e.errno == errno.EADDRINUSE else ""
        raise FeaturevisError(f"cannot listen on {host}:{port} ({e.strerror or e}){hint}") from None
    return sock
