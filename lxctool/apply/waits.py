"""Waiting after a start: LXD's cpuset pinning, an IPv4 address, the image's readiness check."""

from __future__ import annotations

import json
from typing import Any

from lxctool.core import units
from lxctool.core.errors import Timeout
from lxctool.host.cgroups import CgroupReader
from lxctool.lxd.client import Lxd, ipv4_addresses, wait_until
from lxctool.report.progress import progress

READY_TIMEOUT = 180.0
# LXD copies image properties into the instance as image.*; images.READINESS_PROPERTY names it
# (repeated here so that a launch without a check does not import the image builder)
READINESS_CONFIG_KEY = "image.lxctool.readiness"


def readiness_argv(inst: dict[str, Any]) -> list[str]:
    """The readiness command LXD copied from the image into the instance's config ([] if none)."""
    raw = (inst.get("config") or {}).get(READINESS_CONFIG_KEY) or ""
    try:
        argv = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(a) for a in argv] if isinstance(argv, list) else []


def wait_for_readiness(lxd: Lxd, name: str, timeout: float, inst: dict[str, Any] | None = None) -> None:
    """Run the image's readiness check (if it has one) until it passes; Timeout naming it if not."""
    argv = readiness_argv(inst) if inst else []
    # most checks pass at once: one exec without recorded output (2 requests) settles it without
    # the image module (~15 ms to import) or the 6 requests of an exec that keeps its output
    if argv and lxd.exec_status(name, argv, timeout=max(5.0, min(30.0, timeout))) == 0:
        return
    from lxctool.images.ops import wait_ready  # lazy: the image builder is heavy; only a check that fails needs it

    result = wait_ready(lxd, name, timeout)
    if not result["ready"]:
        raise Timeout(f"{name} is running but its {result['image']} readiness check still fails after "
                      f"{timeout:g}s ({result['output']}); it was left running: check it with "
                      f"`lxctool image check {name}`, remove it with `lxctool delete --force {name}`")


def cpuset_matches(actual: str | None, wanted: str) -> bool:
    """Whether a cgroup cpuset satisfies limits.cpu (a count, or an exact set)."""
    if not actual:
        return False
    have, spec = units.parse_cpuset(actual), units.parse_cpu(wanted)
    return len(have) == spec.count if spec.count is not None else have == spec.cpuset


def wait_for_cpuset(lxd: Lxd, name: str, wanted: str | None, timeout: float = 10) -> None:
    """LXD pins CPUs shortly after start (its scheduler runs asynchronously): wait until it has."""
    if not wanted or not lxd.is_local:  # a remote's cgroup files are not readable from here
        return
    reader = CgroupReader()
    if not reader.exists(name, lxd.project):
        return  # not a local daemon: nothing to read
    # a cgroup file read costs microseconds: poll it often (the default 50 ms would add ~25 ms)
    if not wait_until(lambda: cpuset_matches(reader.read(name, lxd.project).cpuset, wanted), timeout,
                      interval=0.005):
        progress(f"{name}: LXD has not applied limits.cpu={wanted} to the cpuset after {timeout:g}s")


def wait_for_ipv4(lxd: Lxd, name: str, expected: str | None, timeout: float) -> dict[str, Any]:
    """Poll the instance state until it has a (the expected) IPv4; return that state, or Timeout."""
    def ready() -> dict[str, Any] | None:
        state = lxd.instance_state(name)
        addrs = ipv4_addresses(state)
        return state if addrs and (expected is None or expected in addrs) else None

    state = wait_until(ready, timeout, interval=0.01)
    if not state:
        what = f"IPv4 {expected}" if expected else "an IPv4 address on its bridge"
        raise Timeout(f"{name} is running but got no {what} within {timeout:g}s; it was left running: "
                      f"inspect it with `lxctool exec {name} -- ip addr` and remove it with "
                      f"`lxctool delete --force {name}`")
    return state
