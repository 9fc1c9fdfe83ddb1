"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FeaturevisError(ValueError):
    """A mistake in what the user asked for (unknown layer, bad file, malformed target...)."""


class FeaturevisNote(UserWarning):
    """Something featurevis did to an input for you that changes it (a photo made grey for a
    grayscale model): a warning, which the CLI prints as one ``featurevis: note:`` line."""


def unknown(kind: str, name: str, choices: Iterable[str], limit: int = 5) -> FeaturevisError:
    """An error for an unknown ``name`` that lists the closest valid choices."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=limit, cutoff=0.5)
    if not close:
        # Fall back to names sharing the prefix, then to the first few, so the user has a lead.
        close = [c for c in choices if c.startswith(name.split(".")[0])][:limit] or choices[:limit]
    return FeaturevisError(f"unknown {kind} {name!r}; closest: {', '.join(close)}")
