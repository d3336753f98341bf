"""The one place that reads cgroup files: effective limits, usage and event counters.

Handles the v1 controller layout (also the hybrid one seen on these machines, where LXD uses
the v1 controllers) and the pure v2 unified layout. Container cgroups are
`lxc.payload.NAME`, or `lxc.payload.PROJECT_NAME` for a container in a non-default project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lxctool.core.names import lxc_name

ROOT = Path(os.environ.get("LXCTOOL_CGROUP_ROOT", "/sys/fs/cgroup"))
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio")


def layout(root: Path = ROOT) -> str:
    """'v2' (unified only), 'hybrid' (v1 controllers + a v2 tree) or 'v1'."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified").is_dir():
        return "hybrid"
    return "v1"


def payload_name(name: str, project: str | None = None) -> str:
    """The cgroup directory name LXD gives a container."""
    return f"lxc.payload.{lxc_name(name, project)}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    if text is None or text == "" or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    """Parse 'key value' lines (memory.stat, cpu.stat, *.events)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


# v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages)
_V1_UNLIMITED = 2**62


@dataclass
class CgroupValues:
    """Effective limits and usage of one container, as the kernel reports them."""

    path: dict[str, str] = field(default_factory=dict)      # what -> file read
    cpuset: str | None = None
    cpu_quota_us: int | None = None                         # None = unlimited
    cpu_period_us: int | None = None
    cpu_shares: int | None = None                           # v1 cpu.shares / v2 cpu.weight
    cpu_weight: int | None = None
    memory_limit: int | None = None                         # None = unlimited
    memory_swap_limit: int | None = None                    # v1 memsw (mem+swap) / v2 swap.max
    swappiness: int | None = None                           # v1 only; LXD sets 0 for swap=false
    pids_max: int | None = None
    blkio: dict[str, dict[str, int]] = field(default_factory=dict)  # rbps/wbps/riops/wiops -> dev -> value
    cpu_usage_ns: int | None = None
    memory_usage: int | None = None
    memory_peak: int | None = None
    swap_usage: int | None = None
    pids_current: int | None = None
    oom_kills: int | None = None
    pids_max_events: int | None = None
    cpu_nr_throttled: int | None = None
    cpu_throttled_ns: int | None = None
    tasks: list[int] = field(default_factory=list)


class CgroupReader:
    """Reads one container's cgroup files in whichever layout this host has."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.layout = layout(root)

    def exists(self, name: str, project: str | None = None) -> bool:
        """Whether the container's cgroup exists (it runs)."""
        return self._dir("memory" if self.layout != "v2" else "", name, project).is_dir()

    def _dir(self, controller: str, name: str, project: str | None) -> Path:
        base = self.root if self.layout == "v2" else self.root / controller
        return base / payload_name(name, project)

    def tasks_and_memory(self, name: str, project: str | None = None) -> tuple[int | None, int | None]:
        """(pids.current, memory use in bytes): the two counters LXD's state reports as processes and
        memory usage, read without the rest (list reads them for every container)."""
        if self.layout == "v2":
            d = self._dir("", name, project)
            return _int(_read(d / "pids.current")), _int(_read(d / "memory.current"))
        return (_int(_read(self._dir("pids", name, project) / "pids.current")),
                _int(_read(self._dir("memory", name, project) / "memory.usage_in_bytes")))

    def read(self, name: str, project: str | None = None) -> CgroupValues:
        """Read every effective limit and usage counter of a running container."""
        v = CgroupValues()
        if self.layout == "v2":
            self._read_v2(v, self._dir("", name, project))
        else:
            self._read_v1(v, name, project)
        return v

    def _file(self, v: CgroupValues, what: str, path: Path) -> str | None:
        v.path[what] = str(path)
        return _read(path)

    def _read_v1(self, v: CgroupValues, name: str, project: str | None) -> None:
        d = {c: self._dir(c, name, project) for c in V1_CONTROLLERS}
        v.cpuset = self._file(v, "cpuset", d["cpuset"] / "cpuset.cpus")
        quota = _int(self._file(v, "cpu_quota", d["cpu"] / "cpu.cfs_quota_us"))
        v.cpu_quota_us = quota if quota is not None and quota > 0 else None
        v.cpu_period_us = _int(self._file(v, "cpu_period", d["cpu"] / "cpu.cfs_period_us"))
        v.cpu_shares = _int(self._file(v, "cpu_shares", d["cpu"] / "cpu.shares"))
        stat = _keyed(_read(d["cpu"] / "cpu.stat"))
        v.cpu_nr_throttled = stat.get("nr_throttled")
        v.cpu_throttled_ns = stat.get("throttled_time")
        v.cpu_usage_ns = _int(self._file(v, "cpu_usage", d["cpuacct"] / "cpuacct.usage"))
        mem = _int(self._file(v, "memory_limit", d["memory"] / "memory.limit_in_bytes"))
        v.memory_limit = mem if mem is not None and mem < _V1_UNLIMITED else None
        memsw = _int(self._file(v, "memory_swap_limit", d["memory"] / "memory.memsw.limit_in_bytes"))
        v.memory_swap_limit = memsw if memsw is not None and memsw < _V1_UNLIMITED else None
        v.swappiness = _int(self._file(v, "swappiness", d["memory"] / "memory.swappiness"))
        v.memory_usage = _int(_read(d["memory"] / "memory.usage_in_bytes"))
        v.memory_peak = _int(_read(d["memory"] / "memory.max_usage_in_bytes"))
        memsw_usage = _int(_read(d["memory"] / "memory.memsw.usage_in_bytes"))
        if memsw_usage is not None and v.memory_usage is not None:
            v.swap_usage = max(0, memsw_usage - v.memory_usage)
        v.oom_kills = _keyed(_read(d["memory"] / "memory.oom_control")).get("oom_kill")
        v.pids_max = _int(self._file(v, "pids_max", d["pids"] / "pids.max"))
        v.pids_current = _int(_read(d["pids"] / "pids.current"))
        v.pids_max_events = _keyed(_read(d["pids"] / "pids.events")).get("max")
        v.tasks = [int(t) for t in (_read(d["pids"] / "tasks") or "").split()]
        for what, fname in (("rbps", "read_bps_device"), ("wbps", "write_bps_device"),
                            ("riops", "read_iops_device"), ("wiops", "write_iops_device")):
            text = self._file(v, f"blkio_{what}", d["blkio"] / f"blkio.throttle.{fname}")
            for line in (text or "").splitlines():
                dev, _, val = line.partition(" ")
                if val.strip().isdigit():
                    v.blkio.setdefault(what, {})[dev] = int(val)

    def _read_v2(self, v: CgroupValues, d: Path) -> None:
        v.cpuset = self._file(v, "cpuset", d / "cpuset.cpus") or _read(d / "cpuset.cpus.effective")
        cpu_max = (self._file(v, "cpu_quota", d / "cpu.max") or "max 100000").split()
        v.cpu_quota_us = _int(cpu_max[0])
        v.cpu_period_us = _int(cpu_max[1]) if len(cpu_max) > 1 else None
        v.path["cpu_period"] = v.path["cpu_quota"]
        v.cpu_weight = _int(self._file(v, "cpu_shares", d / "cpu.weight"))
        stat = _keyed(_read(d / "cpu.stat"))
        v.cpu_usage_ns = stat["usage_usec"] * 1000 if "usage_usec" in stat else None
        v.cpu_nr_throttled = stat.get("nr_throttled")
        v.cpu_throttled_ns = stat["throttled_usec"] * 1000 if "throttled_usec" in stat else None
        v.memory_limit = _int(self._file(v, "memory_limit", d / "memory.max"))
        v.memory_swap_limit = _int(self._file(v, "memory_swap_limit", d / "memory.swap.max"))
        v.memory_usage = _int(_read(d / "memory.current"))
        v.memory_peak = _int(_read(d / "memory.peak"))
        v.swap_usage = _int(_read(d / "memory.swap.current"))
        v.oom_kills = _keyed(_read(d / "memory.events")).get("oom_kill")
        v.pids_max = _int(self._file(v, "pids_max", d / "pids.max"))
        v.pids_current = _int(_read(d / "pids.current"))
        v.pids_max_events = _keyed(_read(d / "pids.events")).get("max")
        v.tasks = [int(t) for t in (_read(d / "cgroup.threads") or "").split()]
        for line in (self._file(v, "io_max", d / "io.max") or "").splitlines():
            dev, *pairs = line.split()
            for pair in pairs:
                k, _, val = pair.partition("=")
                if val.isdigit():
                    v.blkio.setdefault(k, {})[dev] = int(val)


def container_of_pid(pid: int) -> str | None:
    """The payload cgroup name a host PID belongs to ('lxc.payload.X' -> 'X'), or None."""
    text = _read(Path(f"/proc/{pid}/cgroup"))
    for line in (text or "").splitlines():
        path = line.split(":", 2)[-1]
        for part in path.split("/"):
            if part.startswith("lxc.payload."):
                return part[len("lxc.payload."):]
    return None
