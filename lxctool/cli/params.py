"""Click callbacks that check every name where it enters lxctool, before any command runs.

They raise SpecError (not click.BadParameter) so a bad name is one line naming the field, exit 2,
exactly like every other refusal (DESIGN.md), and nothing has asked LXD anything yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from lxctool.core import names


def _names_of(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        return [str(v) for v in value]
    return [str(value)]


def checked(kind: str, field: str | None = None) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback refusing any value that breaks LXD's rule for `kind` names (exit 2, one line each)."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        label = field or (param.opts[0] if param.param_type_name == "option"
                          else {"names": "NAME"}.get(param.name or "", (param.name or "name").upper()))
        names.require(kind, _names_of(value), label)
        return value

    return callback


def _file_or_name(kind: str, field: str, derived: Callable[[Path], str]) -> Callable[..., Any]:
    """A value that may be a YAML file (its derived LXD name is checked) or an LXD name."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        errors: list[str] = []
        for item in _names_of(value):
            path = Path(item)
            if path.suffix in (".yaml", ".yml") and path.is_file():
                errors += names.CHECKS[kind](derived(path), f"{field} {item}: the name it gives")
            else:
                errors += names.CHECKS[kind](item, field)
        if errors:
            from lxctool.core.errors import SpecError  # lazy: not paid by --help

            raise SpecError(errors)
        return value

    return callback


def profile_ref() -> Callable[..., Any]:
    """--profile: a profile file (it becomes LXD profile lxctool-STEM) or an LXD profile name."""
    return _file_or_name("profile", "--profile", lambda p: names.FILE_PROFILE_PREFIX + p.stem)


def recipe_ref(field: str = "NAME") -> Callable[..., Any]:
    """A recipe: a .yaml file (its stem becomes the image alias) or an image/recipe name."""
    return _file_or_name("image", field, lambda p: p.stem)


CONTAINER = checked("container")
NETWORK = checked("network")
IMAGE = checked("image")
PROJECT = checked("project", "--project")


def env_pairs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """--env KEY=VALUE: a pair without '=' or with an empty or malformed KEY is refused, not ignored."""
    import re  # lazy: not paid by --help

    from lxctool.core.errors import SpecError  # lazy: not paid by --help

    errors = [f"--env: {item!r} is not KEY=VALUE; use a KEY of letters, digits and '_' "
              "(not starting with a digit), then '=', then the value" for item in value
              if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", item, flags=re.DOTALL)]
    if errors:
        raise SpecError(errors)
    return value


def finite(low: float, high: float) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A float option refusing nan, inf and anything outside [low, high] (click's FloatRange lets nan by)."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return value
        from lxctool.core.errors import SpecError  # lazy: not paid by --help
        from lxctool.core.units import UnitError, finite_number  # lazy: not paid by --help

        try:
            return finite_number(value, param.opts[0], low, high)
        except UnitError as exc:
            raise SpecError(str(exc)) from None

    return callback
