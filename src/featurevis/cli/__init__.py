"""The command line: ``featurevis COMMAND ...``."""

from .main import main

__all__ = ["main"]
