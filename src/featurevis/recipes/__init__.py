"""Techniques built on the engine, one module each. A recipe imports ``core`` and ``zoo``,
never another recipe; what two recipes share lives in ``core``."""
