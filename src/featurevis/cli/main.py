"""The entry point: ``featurevis COMMAND ...`` finds COMMAND in :data:`COMMANDS` and runs it.

Each command is a module of this package with ``add_arguments(parser)`` and ``run(args) ->
exit code``; only the chosen command's module is imported, so ``featurevis --help`` loads
no torch. User mistakes (unknown model/layer/channel, bad files, unwritable paths) print one
line and exit with code 2; Ctrl-C, at any point, prints one line and exits with 130 (143 for
SIGTERM; work already done is kept by the command; :mod:`.interrupts` says how).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from ..core.errors import FeaturevisError, FeaturevisNote
from . import interrupts, startup
from .args import CommandParser


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    name: str
    help: str
    module: str  #: a module of ``featurevis.cli`` with ``add_arguments`` and ``run``


#: Every command, in the order ``featurevis --help`` lists them (the order a newcomer meets them).
COMMANDS: tuple[Command, ...] = (
    Command("demo", "render a gallery of lite0 channels and classes into ./featurevis-demo/", "demo"),
    Command(
        "models", "list the zoo: each model, its source, and whether (and where) its weights are present", "models"
    ),
    Command("layers", "list a model's layers with their output shapes", "layers"),
    Command("render", "render a feature visualization of a channel, neuron, layer or class", "render"),
    Command("dream", "DeepDream: amplify what a layer detects in your photo", "dream"),
    Command("invert", "feature inversion: reconstruct a photo from one layer's representation", "invert"),
    Command("style", "style transfer: repaint a photo in the style of other images (Gatys et al.)", "style"),
    Command("style-train", "fast style: train a small network to apply one style in one pass", "style_train"),
    Command("style-apply", "fast style: stylize a photo in one pass with a trained network", "style_apply"),
    Command("fool", "perturb a photo invisibly so the network misclassifies it (FGSM/PGD)", "fool"),
    Command("evolve", "evolve fooling images for classes with no gradients (CPPN or pixel genomes)", "evolve"),
    Command("saliency", "raw and preconditioned input gradients, SmoothGrad and gradient×input", "saliency"),
    Command("caricature", "caricature: an image whose layer activations exaggerate a photo's (Lucid)", "caricature"),
    Command(
        "accentuate", "feature accentuation: raise a target in a photo, staying near it (Hamblin 2024)", "accentuate"
    ),
    Command("concepts", "fit concept atoms (NMF or a sparse autoencoder) of a layer and catalog them", "concepts"),
    Command("sanity", "sanity checks: cascading weight randomization, robustness to unseen transforms", "sanity"),
    Command(
        "attribute",
        "which pixels, places and hidden channels drive any target on a photo (IG, Grad-CAM, channel ranking)",
        "attribute",
    ),
    Command("groups", "neuron groups: factor a photo's activations into parts, map and draw each", "groups"),
    Command("activation-grid", "draw what a layer sees at each cell of a photo's activation map", "activation_grid"),
    Command("atlas", "activation atlas: a 2-D map of a layer's activations over many image patches", "atlas"),
    Command(
        "prior-train", "train a generator prior that inverts a layer of your model (for --prior dgn)", "prior_train"
    ),
    Command("catalog", "build a browsable catalog of every channel of chosen layers", "catalog"),
    Command("score", "fidelity scores for every unit of a catalog (2AFC, path check, ...), CSV/JSON export", "score"),
    Command("serve", "browse a catalog in the web browser (and render on demand)", "serve"),
)
_BY_NAME = {c.name: c for c in COMMANDS}


def build_parser() -> CommandParser:
    """The top-level parser: ``--help`` (the table), ``--version``, unknown commands."""
    from .. import __version__

    parser = CommandParser(prog="featurevis", description="See what a trained image network has learned.")
    parser.add_argument("--version", action="version", version=f"featurevis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for c in COMMANDS:
        sub.add_parser(c.name, help=c.help)
    return parser


def command_parser(command: Command) -> tuple[CommandParser, ModuleType]:
    """``command``'s parser, with its module (imported now: it may import torch)."""
    module = importlib.import_module(f"{__package__}.{command.module}")
    parser = CommandParser(prog=f"featurevis {command.name}", description=command.help)
    module.add_arguments(parser)
    return parser, module


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """Notes (:class:`FeaturevisNote`) as one line; other warnings as Python prints them."""
    if issubclass(category, FeaturevisNote):
        print(f"featurevis: note: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``featurevis ARGV``; returns the exit code (usage errors raise ``SystemExit(2)``).

    Without ``argv`` this is the process's own command line, and the process's Ctrl-C and
    SIGTERM are handled as :mod:`.interrupts` describes (an interrupted process exits here)."""
    own_process = argv is None
    if own_process:
        interrupts.install()  # first of all: a Ctrl-C from here on is one line and exit 130
        startup.before_torch()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command = _BY_NAME.get(argv[0]) if argv else None
        if command is None:  # no command, --help, --version or a typo
            parser = build_parser()
            parser.parse_args(argv)
            parser.print_help()
            return interrupts.finish(2)
        parser, module = command_parser(command)
        if own_process:
            startup.after_torch()
        args = parser.parse(argv[1:])
        interrupts.working()
        with warnings.catch_warnings():
            warnings.showwarning = _show_note
            code = module.run(args)
    except FeaturevisError as e:
        print(f"featurevis: error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt as e:
        code = interrupts.report(e)
    return interrupts.finish(code)


if __name__ == "__main__":
    sys.exit(main())
