"""The base of every recipe's result: the picture plus how it was made.

Each recipe adds its own fields (the images, what the model said before and after); the
settings, whether Ctrl-C cut the run short and how long it took are the same everywhere, so
they are declared once here (keyword-only, so subclasses may add required fields after them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .images import ShowsImage


@dataclass
class Result(ShowsImage):
    """Settings (every argument that shaped the result), ``interrupted`` and ``seconds``."""

    settings: dict = field(default_factory=dict, kw_only=True)
    interrupted: bool = field(default=False, kw_only=True)
    seconds: float = field(default=0.0, kw_only=True)
