"""What this host can enforce, probed once and reused by launch's refusals and `doctor`.

Probes read the kernel's state and never change it (no test qdisc, no test action).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxctool.core import desired
from lxctool.host import cgroups, run



def cpu_count() -> int:
    """CPUs this host can give containers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def _kallsyms() -> str:
    try:
        return Path("/proc/kallsyms").read_text()
    except OSError:
        return ""


def _module_available(module: str, symbol: str) -> bool:
    """A kernel feature is there when built in (its symbol), loaded, or loadable (modinfo)."""
    if Path(f"/sys/module/{module}").exists():
        return True
    if f" {symbol}" in _kallsyms() or f" {symbol}\t" in _kallsyms():
        return True
    return run.which("modinfo") is not None and run.succeeds(["modinfo", module])


def tc_police_available() -> bool:
    """Whether the tc police action exists (LXD needs it for a NIC's limits.egress)."""
    return _module_available("act_police", "tcf_police_init")


def ifb_available() -> bool:
    """Whether ifb devices can be made (host-side egress shaping)."""
    return _module_available("ifb", "ifb_xmit")


def swap_accounting(layout: str) -> bool:
    """Whether the memory controller accounts swap (needed for limits.memory.swap)."""
    root = cgroups.ROOT
    if layout == "v2":
        return any(root.glob("*/memory.swap.max"))
    return (root / "memory" / "memory.memsw.limit_in_bytes").exists()


def swap_total() -> int:
    """Swap space configured on the host, in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1]) * 1024
    return 0


class HostCapabilities:
    """What the kernel on this host can enforce; each probe runs once, on first use."""

    @functools.cached_property
    def cpus(self) -> int:
        """CPUs available to containers."""
        return cpu_count()

    @functools.cached_property
    def cgroup_layout(self) -> str:
        """'v1', 'hybrid' or 'v2'."""
        return cgroups.layout()

    @functools.cached_property
    def tc_police(self) -> bool:
        """Whether LXD can apply a NIC's limits.egress."""
        return tc_police_available()

    @functools.cached_property
    def ifb(self) -> bool:
        """Whether ifb devices exist for host-side shaping."""
        return ifb_available()

    @functools.cached_property
    def swap_accounting(self) -> bool:
        """Whether the memory cgroup accounts swap."""
        return swap_accounting(self.cgroup_layout)

    @functools.cached_property
    def swap_bytes(self) -> int:
        """Host swap space in bytes."""
        return swap_total()

    @classmethod
    def probe(cls) -> "HostCapabilities":
        """Capabilities of this host (probed lazily, without changing anything)."""
        return cls()


pool_enforces_quota = desired.pool_enforces_quota  # pure: it lives in core/desired.py
