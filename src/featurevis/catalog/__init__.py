"""Catalogs: every channel of chosen layers rendered and stored (build, SQLite store), and the
web explorer that browses them."""
