"""lxctool's own names on LXD objects, and LXD's naming rules for every name a user can type.

Every name that enters lxctool (a command argument, --project, --profile, a stack or experiment
file) is checked here before it is used anywhere, so a name like `x?project=other` or `net/../a`
is refused with exit 2 instead of reaching an LXD URL, a firewall rule or a file path. The rules
are LXD 5.0's where LXD has one, kept slightly stricter where LXD's is loose (LXD accepts almost
any profile or alias name; one that cannot be typed safely in a shell, a URL or a file name is
not worth allowing). lxd/client.py still percent-encodes every URL segment: this module keeps
the messages clear, the client keeps the door shut even if a caller forgets to check.
"""

from __future__ import annotations

import re

BASE_PROFILE = "lxctool"              # root disk on the lxctool pool, eth0 on lxctool0 (setup-host.sh)
FILE_PROFILE_PREFIX = "lxctool-"      # LXD profiles made from profiles/*.yaml
MANAGED_KEY = "user.lxctool.managed"  # "true" on every instance and network lxctool created
ISOLATED_KEY = "user.lxctool.isolated"
TEMP_OWNER_KEY = "user.lxctool.temp-owner"  # "PID:START" of the process that made a temporary object
SETUP_HINT = "run scripts/setup-host.sh"

def lxc_name(name: str, project: str | None = None) -> str:
    """The name LXC (and so the cgroup tree) knows a container by: LXD prefixes non-default projects."""
    return f"{project}_{name}" if project and project != "default" else name


# kind -> (pattern, max length, what is accepted: said in every refusal)
_RULES: dict[str, tuple[str, int, str]] = {
    # LXD: a hostname label (RFC 1123), 1-63, not starting with a digit or a hyphen
    "container": (r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?", 63,
                  "1-63 letters, digits and hyphens, starting with a letter and not ending with a hyphen"),
    # a bridge name is a kernel interface name: at most 15 bytes (IFNAMSIZ-1), no '/', ':' or space
    "network": (r"[A-Za-z][A-Za-z0-9_.-]*", 15,
                "1-15 letters, digits, '-', '_' or '.', starting with a letter (a kernel interface name)"),
    "profile": (r"[A-Za-z0-9][A-Za-z0-9_.+-]*", 63,
                "1-63 letters, digits, '-', '_', '.' or '+', starting with a letter or digit"),
    "image": (r"[A-Za-z0-9][A-Za-z0-9_.+-]*", 63,
              "1-63 letters, digits, '-', '_', '.' or '+', starting with a letter or digit"),
    # LXD refuses '_' in project names: it joins project and instance as PROJECT_NAME
    "project": (r"[A-Za-z0-9][A-Za-z0-9.+-]*", 63,
                "1-63 letters, digits, '-', '.' or '+', starting with a letter or digit (no '_')"),
    "volume": (r"[A-Za-z0-9][A-Za-z0-9_.+-]*", 63,
               "1-63 letters, digits, '-', '_', '.' or '+', starting with a letter or digit"),
    # an lxc remote name is written before ':' in REMOTE:NAME, so it cannot hold ':' or '/'
    "remote": (r"[A-Za-z0-9][A-Za-z0-9_.-]*", 63,
               "1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"),
}


def _check(kind: str, name: object, field: str) -> list[str]:
    pattern, longest, accepted = _RULES[kind]
    if not isinstance(name, str):
        return [f"{field}: {name!r} is not a {kind} name; use {accepted}"]
    shown = name if len(name) <= 80 else name[:77] + "..."
    if name in (".", "..") or not re.fullmatch(pattern, name, flags=re.ASCII):
        return [f"{field}: {shown!r} is not a valid {kind} name; use {accepted}"]
    if len(name.encode()) > longest:
        return [f"{field}: {shown!r} is {len(name)} characters long; a {kind} name has at most {longest}"]
    return []


def check_container(name: object, field: str = "NAME") -> list[str]:
    """Errors for a container (instance) name LXD would reject or that could not be typed safely."""
    return _check("container", name, field)


def check_network(name: object, field: str = "NETWORK") -> list[str]:
    """Errors for a bridge name: interface-name rules, at most 15 characters."""
    return _check("network", name, field)


def check_profile(name: object, field: str = "--profile") -> list[str]:
    """Errors for an LXD profile name."""
    return _check("profile", name, field)


def check_image(name: object, field: str = "IMAGE") -> list[str]:
    """Errors for an image alias (also a recipe name)."""
    return _check("image", name, field)


def check_project(name: object, field: str = "--project") -> list[str]:
    """Errors for an LXD project name."""
    return _check("project", name, field)


def check_volume(name: object, field: str = "VOLUME") -> list[str]:
    """Errors for a storage volume (or storage pool) name."""
    return _check("volume", name, field)


def check_remote(name: object, field: str = "REMOTE") -> list[str]:
    """Errors for a remote's name."""
    return _check("remote", name, field)


CHECKS = {"container": check_container, "network": check_network, "profile": check_profile,
          "image": check_image, "project": check_project, "volume": check_volume,
          "remote": check_remote}


def require(kind: str, names: list[str] | tuple[str, ...], field: str) -> None:
    """Raise SpecError naming every bad name of this kind (checked before any change)."""
    from lxctool.core.errors import SpecError  # lazy: errors are needed only on a refusal

    errors = [line for name in names for line in CHECKS[kind](name, field)]
    if errors:
        raise SpecError(errors)
