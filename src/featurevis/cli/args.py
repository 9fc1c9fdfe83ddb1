"""The CLI's subcommand registry and shared argument types, apart from ``cli`` itself.

Recipe modules register their subcommands here at import. Keeping this out of ``cli`` means
``import featurevis`` (which imports the recipes) never imports ``featurevis.cli``, so
``python -m featurevis.cli`` runs one copy of it and sees every registered command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: Subcommands register here: name -> (help, add_arguments, run). Recipe modules add their own.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Decorator registering ``run(args) -> exit code`` as subcommand ``name``."""

    def wrap(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return wrap


def add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="checkpoint file for the model (default: packaged, torch hub cache, or download)",
    )


def add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    """--device, --seed, --quiet; and --weights for commands that load a model."""
    if model:
        add_weights(p)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    p.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _non_negative(text: str) -> int:
    """An integer >= 0 (0 typically meaning "off" or "as is")."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def model_from_args(args: argparse.Namespace):
    """The zoo model named by ``args.model`` (weights from ``--weights`` if given), on ``args.device``."""
    from ..core.engine import resolve_device
    from ..zoo import load_model

    return load_model(args.model, weights=getattr(args, "weights", None)).to(resolve_device(args.device))
