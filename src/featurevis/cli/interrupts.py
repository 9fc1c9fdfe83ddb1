"""How a ``featurevis`` process stops on Ctrl-C (SIGINT) or SIGTERM: one line, exit 130 (143 for
SIGTERM), and the work done so far kept, whenever the signal lands.

Python's default (``KeyboardInterrupt`` wherever the signal lands) fails in four places, each
seen in practice:

- during start-up a ``KeyboardInterrupt`` raised inside an import or inside argparse prints a
  traceback, or turns into another error (argparse's own clean-up then fails);
- a second Ctrl-C while the partial result is being saved loses it;
- one that lands in code run by ``exec`` (every dataclass's methods are made that way, so torch's
  import is full of it) makes CPython kill the process by SIGINT at exit (status -2) although
  the interrupt was handled;
- one that lands after the work, while the interpreter shuts down, kills it the same way.

So the process goes through phases. *Starting* (imports, parsing): nothing is done yet, and a
signal ends the process at once. *Working* (the command runs): the first signal raises
``KeyboardInterrupt`` (:class:`Terminated` for SIGTERM) where the work is; the engine and the
recipes catch it and return what they have, which the command saves. *Stopping* (after that
first signal): the next signal only says the work so far is being kept; one more quits at once
without it. *Done* (the exit code is known): signals are ignored, so a late one cannot turn a
finished run into a death by signal, and an interrupted process leaves by :func:`os._exit` (after
flushing its output), which skips CPython's re-kill at exit.

Only the process's own entry point installs this (``featurevis.cli.main()`` without arguments);
calling ``main([...])`` from Python, as the tests and notebooks do, leaves signals alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

#: The signals handled, and the word each one's line uses.
SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a kind of Ctrl-C: everything that keeps partial work on Ctrl-C (the
    engine, the recipes, the catalog's committed shards) keeps it on SIGTERM too."""


class _State:
    installed = False
    phase = "starting"  # starting, working, done
    signum: int | None = None  # the first signal received
    extra = 0  # signals received after the first


_state = _State()


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


def _say(text: str) -> None:
    # os.write, not print: the signal may have landed inside a print to the same stream.
    with contextlib.suppress(OSError, ValueError):  # stderr closed or not a real file
        os.write(sys.stderr.fileno(), f"featurevis: {text}\n".encode())


def _quit(signum: int) -> NoReturn:
    _say(SIGNALS[signum])
    _flush()
    os._exit(exit_code(signum))


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.phase == "starting":  # nothing done yet: nothing to keep
        _quit(signum)
    if _state.signum is None:
        _state.signum = signum
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    _state.extra += 1
    if _state.extra == 1:
        _say(f"{SIGNALS[signum]}; finishing what can be kept (once more quits at once)")
        return
    _quit(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as above, from now on (the *starting* phase). A signal the
    process was started with ignored (``nohup``, a background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _handle)
    _state.installed = True
    _state.phase, _state.signum, _state.extra = "starting", None, 0


def working() -> None:
    """The command's work begins: from now on the first signal raises ``KeyboardInterrupt``."""
    if _state.installed and _state.phase == "starting":
        _state.phase = "working"


def report(e: KeyboardInterrupt) -> int:
    """Say that the command was stopped by ``e`` (unless a second signal already said so) and
    return the exit code for it."""
    signum = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
    if not _state.extra:
        print(f"featurevis: {SIGNALS[signum]}", file=sys.stderr)
    return exit_code(signum)


def finish(code: int) -> int:
    """The process's exit code once the command is over; does not return when it was
    interrupted (see the module's docstring). A command that reports 130 after a SIGTERM
    exits 143."""
    if not _state.installed:
        return code
    _state.phase = "done"
    for signum in SIGNALS:
        if signal.getsignal(signum) is _handle:
            signal.signal(signum, signal.SIG_IGN)
    if _state.signum is not None and code == exit_code(signal.SIGINT):
        code = exit_code(_state.signum)
    if _state.signum is not None or code in (exit_code(s) for s in SIGNALS):
        _flush()
        os._exit(code)
    return code


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
