"""The one stderr progress reporter: talk goes to stderr, data to stdout (DESIGN.md rule 7)."""

from __future__ import annotations

import sys


def progress(message: str) -> None:
    """One line of progress on stderr."""
    print(f"lxctool: {message}", file=sys.stderr, flush=True)
