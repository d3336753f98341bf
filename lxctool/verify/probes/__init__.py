"""One probe per limit kind: run a workload that pushes past the limit, measure from the host,
and return a Finding with a verdict. Probes share a Context and leave the container as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from lxctool.host.cgroups import CgroupReader, CgroupValues
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance

ENFORCED = "ENFORCED"
NOT_ENFORCED = "NOT ENFORCED"
SOFT = "SOFT"
TOLERANCE = 0.15          # disk and network rates: within 15% of the limit
CPU_TOLERANCE = 0.05      # CPU time per second: at most the quota + 5%


def unsupported(reason: str) -> str:
    """The UNSUPPORTED verdict with its reason."""
    return f"UNSUPPORTED: {reason}"


def failing(verdict: str) -> bool:
    """Whether a verdict makes `verify` exit 3."""
    return verdict == NOT_ENFORCED or verdict.startswith("UNSUPPORTED")


@dataclass
class Finding:
    """One verified limit: what LXD has, what was measured, the counters that show it, the verdict."""

    limit: str
    configured: str
    measured: str
    evidence: str
    verdict: str
    configured_value: float | None = None   # in `unit`, for sweeps and plots
    measured_value: float | None = None
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The row for table / csv / json output."""
        return {"limit": self.limit, "configured": self.configured, "measured": self.measured,
                "evidence": self.evidence, "verdict": self.verdict,
                "configured_value": self.configured_value, "measured_value": self.measured_value,
                "unit": self.unit, "details": self.details}


@dataclass
class Context:
    """What every probe needs: the daemon, the container, its configured limits, the reader."""

    lxd: Lxd
    name: str
    configured: dict[str, str]           # 'limits.memory' / 'root.size' -> LXD value
    instance: Instance
    duration: float = 5.0
    host_cpus: int = 1
    host_swap: int = 0
    reader: CgroupReader = field(default_factory=CgroupReader)
    progress: Callable[[str], None] = lambda message: None

    def cgroup(self) -> CgroupValues:
        """A fresh read of the container's cgroup files."""
        return self.reader.read(self.name, self.lxd.project)
