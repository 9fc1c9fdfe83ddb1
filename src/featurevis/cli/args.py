"""The arguments commands share: one spelling, one parser and one check for each.

Every command builds its parser from these helpers, so ``-m/--model``, ``-o/--output``,
``--size``, ``--steps``, ``--lr``, ``--seed``, ``--device`` and ``-q`` mean the same
everywhere, numbers are validated alike (finite; positive where zero makes no sense), and the
output is checked writable once, by :meth:`CommandParser.parse`, before any work starts.
Nothing here imports torch at import time.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ..core.errors import FeaturevisError

if TYPE_CHECKING:
    from ..core.model import FeatureModel

#: ``check(path, args)`` raises :class:`FeaturevisError` when ``path`` cannot be written.
Check = Callable[[Path, argparse.Namespace], object]


@dataclass(frozen=True)
class Output:
    """A command's ``-o`` file or folder: its default (text, or derived from the other
    arguments) and how to check it can be written."""

    default: str | Callable[[argparse.Namespace], str]
    check: Check


class CommandParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line (exit 2, like every other user error) and
    whose :meth:`parse` settles the model and the output before a command runs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.output: Output | None = None
        #: Options that are the side of square images the command makes (``--size``,
        #: ``--save-size``), and the one that is how many it makes at once (``--batch``).
        self.square_sides: list[str] = []
        self.batch_option: str | None = None

    def error(self, message: str) -> NoReturn:
        # "argument --lr: must be positive, got '0'" reads better as "--lr must be positive, ..."
        message = re.sub(r"^argument ([^:]+): must ", r"\1 must ", message)
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """Parse ``argv`` (options and positionals in any order), resolve ``args.model`` and
        check the output; a problem raises (usage: ``SystemExit(2)``; else ``FeaturevisError``)."""
        _escape_unprintable_paths()
        args = self.parse_intermixed_args(argv)
        if hasattr(args, "model"):
            args.model = _one_model(vars(args).pop("model_positional", None), args.model)
        self._check_memory(args)
        if self.output is not None:
            out = self.output
            default = out.default(args) if callable(out.default) else out.default
            args.output = Path(args.output or default)
            out.check(args.output, args)
        return args

    def _check_memory(self, args: argparse.Namespace) -> None:
        """Refuse square images that cannot fit before loading anything: their pixels alone
        (the model's activations are checked when it is loaded, by the recipe)."""
        from ..core.memory import check_request

        batch = getattr(args, self.batch_option, 1) if self.batch_option else 1
        for dest in self.square_sides:
            side = getattr(args, dest, None) or (_input_size(args) if dest == "size" else None)
            if side:
                flag = "--" + dest.replace("_", "-")
                what = f"{flag} {side}" + (f" with --batch {batch}" if batch > 1 else "")
                hint = f"use a smaller {flag}" + (" or --batch" if batch > 1 else "")
                check_request(None, batch, side, side, what=what, hint=hint, device=_device(args))


def _input_size(args: argparse.Namespace) -> int | None:
    """The zoo model's own input size (the default --size), read without loading it."""
    from ..zoo import ALIASES, ZOO

    entry = ZOO.get(ALIASES.get(getattr(args, "model", None) or "", getattr(args, "model", None) or ""))
    return entry.input_size if entry is not None else None


def _device(args: argparse.Namespace) -> str | None:
    device = getattr(args, "device", None)
    return None if device in (None, "auto") else device


def _escape_unprintable_paths() -> None:
    """Print what stdout cannot encode (a file name that is not UTF-8, kept by Python as lone
    surrogates) as escapes, instead of failing after the work is done."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


# -- numbers -----------------------------------------------------------------------------
def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _bounded(
    kind: type[int] | type[float], ok: Callable[[float], bool], need: str, doc: str
) -> Callable[[str], int | float]:
    """A parser of finite ``kind`` numbers for which ``ok(value)``; otherwise "must be {need}"."""

    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {need}, got {text!r}")
        return kind(value)

    parse.__doc__ = doc
    return parse


positive_int = _bounded(int, lambda v: v > 0, "positive", "An integer > 0 (a count or a size).")
non_negative_int = _bounded(int, lambda v: v >= 0, ">= 0", 'An integer >= 0 (0 typically meaning "off" or "as is").')
finite_float = _bounded(float, lambda v: True, "finite", "Any finite number (a weight that may be negative).")
positive_float = _bounded(float, lambda v: v > 0, "positive", "A finite number > 0 (a rate, a scale, a time).")
non_negative_float = _bounded(
    float, lambda v: v >= 0, ">= 0", "A finite number >= 0 (a penalty weight, 0 meaning none)."
)
probability = _bounded(float, lambda v: 0 <= v <= 1, "between 0 and 1", "A number in [0, 1].")
#: Largest learning rate: Adam moves each parameter by about ``lr`` per step, so beyond this an
#: image only saturates (and near 1e308 the arithmetic overflows to NaN).
MAX_LR = 10.0
learning_rate = _bounded(
    float, lambda v: 0 < v <= MAX_LR, f"positive and at most {MAX_LR:g}", "A learning rate in (0, 10]."
)
fraction = _bounded(float, lambda v: 0 < v <= 1, "in (0, 1]", "A step in [0, 1] pixel units, > 0.")
#: Seeds run 0..2**63-1: torch takes 64-bit seeds, and recipes add small offsets (restarts, frames).
MAX_SEED = 2**63 - 1
seed = _bounded(int, lambda v: 0 <= v <= MAX_SEED, "between 0 and 2**63-1", "A random seed, 0..2**63-1.")
port = _bounded(int, lambda v: 1 <= v <= 65535, "between 1 and 65535", "A TCP port, 1..65535.")


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, and present on this machine."""
    from ..core.engine import resolve_device

    if text == "auto":
        return text
    try:
        resolve_device(text)
    except FeaturevisError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def int_list(text: str) -> list[int]:
    """``64,128``: comma-separated positive integers (empty items ignored)."""
    try:
        return [positive_int(t) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None


# -- the model ---------------------------------------------------------------------------
def add_model(
    p: argparse.ArgumentParser,
    *,
    positional: bool = False,
    what: str = "zoo model, timm:NAME, clip:ARCH[:TAG] or your own file.py:factory; see `featurevis models`",
) -> None:
    """``-m/--model MODEL`` (default: the zoo's default model) and ``--weights FILE``.

    ``positional=True`` also accepts the model as an unlisted first positional argument, the
    older spelling of some commands (``featurevis render lite0 TARGET``), which scripts use.
    """
    from ..zoo import DEFAULT_MODEL

    if positional:
        p.add_argument("model_positional", nargs="?", metavar="MODEL", help=argparse.SUPPRESS)
    p.add_argument(
        "-m",
        "--model",
        default=None,
        help=f"{what} (default {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="checkpoint file for the model, .pth/.bin/.safetensors (default: packaged, torch hub or Hugging Face "
        "cache, or download); random: untrained timm:/clip: weights",
    )


def _one_model(positional: str | None, option: str | None) -> str:
    """The model named by the positional or ``-m`` (the same one if both), else the default."""
    from ..zoo import ALIASES, DEFAULT_MODEL

    if positional and option and ALIASES.get(positional, positional) != ALIASES.get(option, option):
        raise FeaturevisError(f"two models given: {positional!r} and -m {option!r}; name one (-m MODEL)")
    return option or positional or DEFAULT_MODEL


def model_from_args(args: argparse.Namespace) -> FeatureModel:
    """The model named by ``args.model`` (a zoo name, ``timm:``/``clip:``, or your own as
    ``module:factory`` / ``path/to/file.py:factory``; weights from ``--weights`` if given), on
    ``args.device``."""
    from ..core.engine import resolve_device

    return load_model_arg(args.model, args.weights).to(resolve_device(args.device))


def load_model_arg(name: str, weights: str | None = None) -> FeatureModel:
    """A zoo or hub model by name, or your own from ``module:factory`` / ``file.py:factory``
    (the catalog's model specs: a grayscale or RGB + depth network renders from the CLI too)."""
    from ..zoo import load_model
    from ..zoo.hub import is_hub_name

    if ":" in name and not is_hub_name(name):
        from ..catalog.build import load_model_spec

        return load_model_spec(name, weights)
    return load_model(name, weights=weights)


# -- the output --------------------------------------------------------------------------
def image_file(path: Path, args: argparse.Namespace | None = None) -> None:
    """An image format Pillow writes, in a folder we can create and write."""
    from ..core.images import check_writable

    check_writable(path)


def folder(path: Path, args: argparse.Namespace | None = None) -> None:
    """A folder that exists or can be made, and can be written; checked without creating it."""
    from ..core.images import check_path

    check_path(path, folder=True)


def writable_file(path: Path, args: argparse.Namespace | None = None) -> None:
    """Any file (a checkpoint, a network) in a folder we can create and write."""
    from ..core.images import check_path

    check_path(path)


def add_output(
    p: CommandParser,
    help: str,
    default: str | Callable[[argparse.Namespace], str],
    check: Check = image_file,
    *,
    metavar: str = "FILE",
    aliases: Sequence[str] = (),
) -> None:
    """``-o/--output`` (plus older ``aliases`` such as ``--out``): ``args.output`` becomes a
    ``Path``, ``default`` when not given, checked by ``check`` when the command line is parsed."""
    p.add_argument("-o", "--output", *aliases, metavar=metavar, default=None, help=help)
    p.output = Output(default, check)


# -- the rest ----------------------------------------------------------------------------
def add_size(
    p: CommandParser, help: str, default: int | None = None, *, zero: bool = False, square: bool = True
) -> None:
    """``--size PX``; ``zero=True`` allows 0 (meaning "the photo's own"). ``square``: the side
    of the square images the command makes, checked against memory when parsed (a photo's
    longest side is checked once the photo's shape is known)."""
    p.add_argument("--size", metavar="PX", type=non_negative_int if zero else positive_int, default=default, help=help)
    if square:
        p.square_sides.append("size")


def add_save_size(p: CommandParser, help: str) -> None:
    """``--save-size PX``: draw the saved images anew at this side (checked like ``--size``)."""
    p.add_argument("--save-size", metavar="PX", type=positive_int, help=help)
    p.square_sides.append("save_size")


def add_batch(p: CommandParser, help: str, default: int) -> None:
    """``--batch N``: images made at once; the memory check multiplies the sizes by it."""
    p.add_argument("--batch", metavar="N", type=positive_int, default=default, help=help)
    p.batch_option = "batch"


def add_steps(p: argparse.ArgumentParser, help: str, default: int | None = None) -> None:
    """``--steps N``: optimization or training steps."""
    p.add_argument("--steps", metavar="N", type=positive_int, default=default, help=help)


def add_lr(p: argparse.ArgumentParser, help: str, default: float | None = None) -> None:
    """``--lr RATE``: a positive learning rate, at most :data:`MAX_LR`."""
    p.add_argument("--lr", metavar="RATE", type=learning_rate, default=default, help=help)


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``: checked when parsed (known, and present on this machine)."""
    p.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:1, mps or auto (default)")


def add_common(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--seed`` and ``-q/--quiet`` (read as ``args.progress``)."""
    add_device(p)
    p.add_argument("--seed", type=seed, default=0, help="seed for every random choice, 0..2**63-1 (default 0)")
    p.add_argument("-q", "--quiet", dest="progress", action="store_false", help="no progress bar")
