"""lxctool's own names on LXD objects: the base profile, the config keys it marks objects with."""

from __future__ import annotations

BASE_PROFILE = "lxctool"              # root disk on the lxctool pool, eth0 on lxctool0 (setup-host.sh)
FILE_PROFILE_PREFIX = "lxctool-"      # LXD profiles made from profiles/*.yaml
MANAGED_KEY = "user.lxctool.managed"  # "true" on every instance and network lxctool created
ISOLATED_KEY = "user.lxctool.isolated"
SETUP_HINT = "run scripts/setup-host.sh"


def lxc_name(name: str, project: str | None = None) -> str:
    """The name LXC (and so the cgroup tree) knows a container by: LXD prefixes non-default projects."""
    return f"{project}_{name}" if project and project != "default" else name
