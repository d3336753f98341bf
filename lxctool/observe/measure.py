"""The one module that imports psutil: raw samples of the host VM and of its containers.

A sample is counters at one instant (CPU time, bytes sent); rates come from two samples
(compare.py). Every sample of every container costs ONE LXD request (instances_full, state
included) plus file reads: /proc for the host and its process attribution, the cgroup files
through CgroupReader for each container.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import psutil

from lxctool.core import units
from lxctool.host import cgroups
from lxctool.host.caps import cpu_count
from lxctool.host.cgroups import CgroupReader
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance

# host NICs whose traffic is the VM's own (veths are the container ends, lo is local)
_SKIP_NIC_PREFIXES = ("lo", "veth")
DISK_CACHE_S = 30.0


@dataclass
class HostSample:
    """The host VM's counters at one instant, and where its processes run."""

    time: float
    wall: float
    cpus: int
    cpu_busy_s: float
    load1: float
    processes: int
    threads: int
    kernel_threads: int
    lxd_processes: int
    by_container: dict[str, int]          # LXD instance name -> processes in its payload cgroup (or below)
    threads_by_container: dict[str, int]
    memory_used: int
    memory_cache: int
    memory_total: int
    swap_used: int
    swap_total: int
    disk_used: int
    disk_total: int
    net: dict[str, tuple[int, int]]       # nic -> (rx bytes, tx bytes)
    ipv4: list[str]
    lxcfs: bool = False                   # lxcfs gives containers their own /proc/meminfo


@dataclass
class ContainerSample:
    """One container's counters at one instant (limits as the kernel enforces them)."""

    name: str
    state: str
    time: float
    ipv4: list[str] = field(default_factory=list)
    processes: int | None = None           # processes in its PID namespace (what `ps` inside shows)
    lxd_processes: int | None = None       # LXD's state count (its pids cgroup counter)
    tasks: int | None = None               # pids.current: threads count here
    threads: int | None = None
    cpu_ns: int | None = None
    cpu_limit_cpus: float | None = None    # quota/period, or cpuset size when limits.cpu is set
    cpu_limit_kind: str | None = None      # "quota", "cpuset" or None
    cpu_shares: int | None = None
    allowance: str | None = None           # limits.cpu.allowance as configured
    memory: int | None = None
    memory_limit: int | None = None
    memory_peak: int | None = None
    swap: int | None = None
    pids_max: int | None = None
    disk: int | None = None
    disk_source: str | None = None         # "lxd" (the pool's count) or "du" (a walk of its files)
    net: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Sample:
    """The host and the selected containers, read at (nearly) the same instant."""

    host: HostSample
    containers: list[ContainerSample]
    requests: int                          # LXD API requests this sample cost


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, num_threads) from /proc/PID/stat; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), int(fields[17])


def _proc_comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def host_sample(project: str | None = None) -> HostSample:
    """Read the host's CPU, memory, disk, network counters and attribute each of its processes."""
    now, wall = time.monotonic(), time.time()
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    pids = set(psutil.pids())
    threads = kernel = lxd_procs = 0
    by_container: dict[str, int] = {}
    threads_by_container: dict[str, int] = {}
    prefix = f"{project}_" if project and project != "default" else ""
    alive: set[int] = set()
    for pid in pids:
        stat = _proc_stat(pid)
        if stat is None:
            continue
        alive.add(pid)
        ppid, nthreads = stat
        threads += nthreads
        owner = cgroups.container_of_pid(pid)
        if owner is not None:
            if owner.startswith(prefix):
                owner = owner[len(prefix):]
            by_container[owner] = by_container.get(owner, 0) + 1
            threads_by_container[owner] = threads_by_container.get(owner, 0) + nthreads
        elif pid == 2 or ppid == 2:
            kernel += 1
        elif _proc_comm(pid) == "lxd":
            lxd_procs += 1
    vm, sw, du = psutil.virtual_memory(), psutil.swap_memory(), psutil.disk_usage("/")
    net = {nic: (c.bytes_recv, c.bytes_sent) for nic, c in psutil.net_io_counters(pernic=True).items()
           if not nic.startswith(_SKIP_NIC_PREFIXES)}
    ipv4 = sorted(a.address for nic, addrs in psutil.net_if_addrs().items() for a in addrs
                  if a.family == socket.AF_INET and not nic.startswith(_SKIP_NIC_PREFIXES))
    return HostSample(
        time=now, wall=wall, cpus=cpu_count(), cpu_busy_s=busy, load1=os.getloadavg()[0],
        processes=len(alive), threads=threads, kernel_threads=kernel, lxd_processes=lxd_procs,
        by_container=by_container, threads_by_container=threads_by_container,
        memory_used=vm.used, memory_cache=getattr(vm, "buffers", 0) + getattr(vm, "cached", 0),
        memory_total=vm.total, swap_used=sw.used, swap_total=sw.total,
        disk_used=du.used, disk_total=du.total, net=net, ipv4=ipv4,
        lxcfs=os.path.exists("/var/lib/lxcfs/proc/meminfo"))


def _tree_bytes(path: Path) -> int:
    """Bytes allocated under path (like `du -s`, hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_blocks * 512
    return total


class DiskUsage:
    """Root disk use per container: LXD's figure when the pool reports one, else a cached walk."""

    def __init__(self, lxd_dir: str) -> None:
        self.lxd_dir = lxd_dir
        self._cache: dict[str, tuple[float, int]] = {}

    def usage(self, inst: Instance) -> tuple[int | None, str | None]:
        """Bytes the container's root disk uses, and where the figure comes from ("lxd" or "du")."""
        reported = ((inst.state.get("disk") or {}).get("root") or {}).get("usage")
        if reported:
            return int(reported), "lxd"
        pool = inst.root_pool
        if not pool:
            return None, None
        name = inst.lxc_name  # the pool's folder is named like the LXC container
        path = Path(self.lxd_dir) / "storage-pools" / pool / "containers" / name
        cached = self._cache.get(name)
        if cached and time.monotonic() - cached[0] < DISK_CACHE_S:
            return cached[1], "du"
        if not path.is_dir():
            return None, None
        value = _tree_bytes(path)
        self._cache[name] = (time.monotonic(), value)
        return value, "du"


def _cpu_limit(cg: cgroups.CgroupValues, config: Mapping[str, str], host_cpus: int) -> tuple[float | None, str | None]:
    """The container's hard CPU ceiling in CPUs: CFS quota, or its cpuset when limits.cpu pins it."""
    quota = cg.cpu_quota_us / cg.cpu_period_us if cg.cpu_quota_us and cg.cpu_period_us else None
    cpuset = len(units.parse_cpuset(cg.cpuset)) if cg.cpuset else None
    if cpuset is not None and not config.get("limits.cpu") and cpuset >= host_cpus:
        cpuset = None  # every CPU of the host: no ceiling
    if quota is not None and (cpuset is None or quota <= cpuset):
        return round(quota, 4), "quota"
    if cpuset is not None:
        return float(cpuset), "cpuset"
    return None, None


class Sampler:
    """Takes samples of the host and the named containers (all when names is None)."""

    def __init__(self, lxd: Lxd, names: list[str] | None = None, reader: CgroupReader | None = None) -> None:
        self.lxd = lxd
        self.names = names
        self.reader = reader or CgroupReader()
        self.disk = DiskUsage(os.path.dirname(lxd.socket_path))

    def instances(self) -> list[dict[str, Any]]:
        """Every instance with its state: one request."""
        return self.lxd.instances_full()

    def sample(self) -> Sample:
        """One sample: the host, then one batched state read, then each container's cgroup files."""
        before = self.lxd.requests
        insts = {v.name: v for v in (Instance(r, self.lxd.project) for r in self.instances())}
        host = host_sample(self.lxd.project)
        names = self.names if self.names is not None else sorted(insts)
        out = [self._container(insts.get(n), n, host) for n in names]
        return Sample(host=host, containers=out, requests=self.lxd.requests - before)

    def _container(self, inst: Instance | None, name: str, host: HostSample) -> ContainerSample:
        now = time.monotonic()
        if inst is None:
            return ContainerSample(name=name, state="GONE", time=now)
        state = inst.state
        status = inst.status.upper()
        c = ContainerSample(name=name, state=status, time=now, ipv4=inst.ipv4)
        config = inst.expanded_config
        c.allowance = config.get("limits.cpu.allowance")
        c.disk, c.disk_source = self.disk.usage(inst)
        if status != "RUNNING" or not self.reader.exists(name, self.lxd.project):
            return c
        cg = self.reader.read(name, self.lxd.project)
        c.time = time.monotonic()
        # counted from /proc/PID/cgroup, so processes in nested cgroups (systemd inside) count too;
        # the v1 `tasks` file lists only the top cgroup's own tasks
        c.processes = host.by_container.get(name, 0)
        c.threads = host.threads_by_container.get(name, 0)
        c.tasks = cg.pids_current
        lxd_count = state.get("processes")
        c.lxd_processes = lxd_count if isinstance(lxd_count, int) and lxd_count >= 0 else None
        c.cpu_ns = cg.cpu_usage_ns
        c.cpu_limit_cpus, c.cpu_limit_kind = _cpu_limit(cg, config, host.cpus)
        c.cpu_shares = cg.cpu_shares if cg.cpu_shares is not None else cg.cpu_weight
        c.memory, c.memory_limit, c.memory_peak = cg.memory_usage, cg.memory_limit, cg.memory_peak
        c.swap, c.pids_max = cg.swap_usage, cg.pids_max
        for nic, info in (state.get("network") or {}).items():
            if nic == "lo":
                continue
            counters = info.get("counters") or {}
            c.net[nic] = (int(counters.get("bytes_received", 0)), int(counters.get("bytes_sent", 0)))
        return c
