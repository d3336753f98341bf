"""A live limit below what a container uses now is refused before LXD sees it, with the figure.

`limits C --processes 1` under 10 running tasks makes every fork fail, `--mem` below the current
charge makes the kernel reclaim or kill, and `--disk 1B` on btrfs left a quota that made the
container unwritable and undeletable. The figures come from LXD's instance state (one request):
its `processes` is the pids cgroup counter, its memory usage the memory cgroup's charge, and its
root disk usage what the pool reports.
"""

from __future__ import annotations

from typing import Any, Callable

from lxctool.core import units
from lxctool.core.spec import Limits, check_floors


def family_of(inst: dict[str, Any]) -> str:
    """The image family (floors) of an existing container, from the image properties LXD copied."""
    config = inst.get("config") or {}
    recipe = config.get("image.lxctool.recipe") or config.get("image.name") or ""
    from lxctool.images.recipes import image_family  # lazy: only this path needs it

    return image_family(recipe) if recipe else "busybox"


def below_current_use(inst: dict[str, Any], state: dict[str, Any] | None, new: Limits,
                      label: Callable[[str], str]) -> list[str]:
    """Errors for new limits under the container's floors or under what it uses right now."""
    errors = check_floors(new, family_of(inst), label)
    state = state or {}
    name = inst.get("name", "")
    if state.get("status") == "Running":
        tasks = state.get("processes")
        if new.processes is not None and isinstance(tasks, int) and 0 <= new.processes <= tasks:
            errors.append(f"{label('processes')}: {name} counts {tasks} tasks now (its pids cgroup); "
                          f"a limit of {new.processes} leaves no room for one more process; use at least {tasks + 1}")
        used = (state.get("memory") or {}).get("usage")
        if new.memory is not None and isinstance(used, int) and new.memory < used:
            errors.append(f"{label('mem')}: {name} uses {units.human_size(used)} now ({used} bytes, page "
                          f"cache included); use at least {units.format_size(_round_up(used))}")
    disk = ((state.get("disk") or {}).get("root") or {}).get("usage")
    if new.disk is not None and isinstance(disk, int) and new.disk <= disk:
        errors.append(f"{label('disk')}: {name}'s root disk holds {units.human_size(disk)} now ({disk} bytes); "
                      f"a smaller quota leaves it unwritable and undeletable; use more than "
                      f"{units.format_size(_round_up(disk))}")
    return errors


def _round_up(value: int) -> int:
    """Up to the next whole MB, so the figure suggested is one a user would type."""
    return -(-value // 10**6) * 10**6
