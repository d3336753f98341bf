"""YAML files lxctool reads from the host (limit profiles); the parsing of their meaning is core's.

yaml is imported on first use (about 25 ms), so `lxctool --help` does not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxctool.core.errors import SpecError
from lxctool.core.spec import Limits, profile_limits


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML document in path; SpecError naming the file when it cannot be read."""
    import yaml  # lazy: ~25 ms, only when a file is read

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read {what}: {str(exc).splitlines()[0]}") from None


def load_profile_file(path: Path) -> Limits:
    """Read a limit profile YAML (launch options as keys) into Limits, or raise SpecError."""
    return profile_limits(read_yaml(path, "profile"), path)


def profile_description(path: Path) -> str:
    """The description line of a profile file, if any."""
    data = read_yaml(path, "profile") or {}
    return str(data.get("description", "")) if isinstance(data, dict) else ""
