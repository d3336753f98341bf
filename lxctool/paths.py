"""Where lxctool finds its data folders (profiles/, images/, experiments/)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_dir(kind: str) -> Path:
    """LXCTOOL_<KIND>_DIR if set, else the folder beside the package (an editable install)."""
    env = os.environ.get(f"LXCTOOL_{kind.upper()}_DIR")
    return Path(env) if env else REPO / kind


def find_file(kind: str, name: str) -> Path | None:
    """A file named by path, or NAME.yaml in the data folder; None when neither exists."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    candidate = data_dir(kind) / f"{name}.yaml"
    return candidate if "/" not in name and candidate.is_file() else None
