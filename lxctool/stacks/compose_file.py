"""Reading a file named with -f as compose: detection, options from the command line, conversion
with the local recipes, and each note said once on stderr."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxctool.core.errors import SpecError
from lxctool.images.recipes import find_recipe
from lxctool.report.progress import progress
from lxctool.stacks.compose import Note, convert, is_compose


@dataclass(frozen=True)
class ComposeOptions:
    """How -f files are read: --compose, --allow-bind-mounts, --strict."""

    force: bool = False
    allow_bind_mounts: bool = False
    strict: bool = False


# set by the command line for one invocation; every reader of -f sees the same options
OPTIONS: ContextVar[ComposeOptions] = ContextVar("compose_options", default=ComposeOptions())
_said: set[tuple[str, str]] = set()


def as_stack_document(path: Path, data: Any) -> Any:
    """The stack document a file means: itself, or its compose conversion (notes said once)."""
    opts = OPTIONS.get()
    if not is_compose(path, data, opts.force):
        return data
    stack, notes = convert(data, path, allow_bind_mounts=opts.allow_bind_mounts, strict=opts.strict,
                           recipe_exists=lambda name: find_recipe(name) is not None)
    for note in notes:
        if (str(path), note.line()) not in _said:
            _said.add((str(path), note.line()))
            progress(f"{path.name}: {note.line()}")
    return stack


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
