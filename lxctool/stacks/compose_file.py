"""Reading a file named with -f as compose: detection, YAML, conversion with the local recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxctool.core.errors import SpecError
from lxctool.images.recipes import find_recipe
from lxctool.stacks.compose import Note, convert, is_compose


def read_yaml(path: Path, label: str = "-f") -> Any:
    """A YAML file's document; SpecError naming the file when it cannot be read or parsed."""
    import yaml  # lazy: ~20 ms

    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"{label}: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None


def load_compose(path: Path, *, force: bool = False, allow_bind_mounts: bool = False,
                 strict: bool = False, label: str = "-f") -> tuple[dict[str, Any], list[Note]] | None:
    """(stack dict, notes) when the file is read as compose, else None."""
    data = read_yaml(path, label)
    if not is_compose(path, data, force):
        return None
    return convert(data, path, allow_bind_mounts=allow_bind_mounts, strict=strict,
                   recipe_exists=lambda name: find_recipe(name) is not None)
