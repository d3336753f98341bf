"""`compare`: rows of the host VM and its containers from two samples, and notes on why they differ."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterator

from lxctool.core import units
from lxctool.core.errors import NotFound, PreflightError, SpecError
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance
from lxctool.observe import remote
from lxctool.observe.measure import ContainerSample, HostSample, Sample, Sampler

COLUMNS = ["name", "state", "processes", "tasks", "cpu_percent", "cpu_percent_of_limit", "memory",
           "swap", "disk", "net_rx", "net_tx", "ipv4"]
CSV_COLUMNS = ["time", "name", "kind", "state", "processes", "tasks", "threads", "cpu_percent",
               "cpu_percent_of_limit", "cpu_limit_cpus", "load1", "memory_bytes", "memory_limit_bytes",
               "memory_peak_bytes", "swap_bytes", "disk_bytes", "disk_total_bytes",
               "net_rx_bytes_per_s", "net_tx_bytes_per_s", "ipv4", "processes_in_containers"]


MAX_INTERVAL_S = 86_400     # a day between samples; time.sleep overflows on 1e308
MAX_SAMPLES = 10**9


def positive(value: str, option: str, kind: type = float) -> Any:
    """Parse a positive, finite, sane number for an option; SpecError (exit 2) naming the option otherwise."""
    integer = kind is int
    low, high = (1, MAX_SAMPLES) if integer else (0.001, MAX_INTERVAL_S)
    try:
        number = units.finite_number(value, option, low, high, integer=integer)
    except units.UnitError as exc:
        raise SpecError(str(exc)) from None
    return int(number) if integer else number


def select(lxd: Lxd, names: list[str]) -> list[str] | None:
    """Check named containers exist (all errors at once); None means every container."""
    if not names:
        return None
    insts = {v.name: v for v in map(Instance, lxd.instances_full())}
    unknown = [n for n in names if n not in insts]
    if unknown:
        raise NotFound(f"NAME: no container named {', '.join(map(repr, unknown))}; "
                       "name existing containers (see `lxctool list`) or none for all")
    if len(names) == 1 and not insts[names[0]].running:
        raise PreflightError(f"NAME: {names[0]} is {(insts[names[0]].status or 'not running').lower()}, "
                             f"so there is nothing to measure; start it with `lxctool start {names[0]}`")
    return list(dict.fromkeys(names))


def _rate(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]], dt: float) -> dict[str, dict[str, float]]:
    out = {}
    for nic, (rx, tx) in b.items():
        if nic in a and dt > 0:
            out[nic] = {"rx_bytes_per_s": round(max(0, rx - a[nic][0]) / dt, 1),
                        "tx_bytes_per_s": round(max(0, tx - a[nic][1]) / dt, 1)}
    return out


def _sum(nics: dict[str, dict[str, float]], key: str) -> float | None:
    return round(sum(v[key] for v in nics.values()), 1) if nics else None


def _total(net: dict[str, tuple[int, int]], i: int) -> int | None:
    """Bytes received (i=0) or sent (i=1) on every NIC since it appeared: a counter, for Prometheus."""
    return sum(v[i] for v in net.values()) if net else None


def host_row(a: HostSample, b: HostSample) -> dict[str, Any]:
    """The host VM's row: CPU % from its busy time between a and b (100 = one host CPU)."""
    dt = b.time - a.time
    cpu = round((b.cpu_busy_s - a.cpu_busy_s) / dt * 100, 1) if dt > 0 else None
    nics = _rate(a.net, b.net, dt)
    in_containers = sum(b.by_container.values())
    return {
        "time": datetime.fromtimestamp(b.wall, timezone.utc).isoformat(timespec="milliseconds"),
        "name": "host", "kind": "host", "state": "RUNNING",
        "processes": b.processes, "tasks": b.threads, "threads": b.threads,
        "cpu_percent": cpu, "cpu_percent_of_limit": round(cpu / b.cpus, 1) if cpu is not None else None,
        "cpu_limit_cpus": float(b.cpus), "load1": round(b.load1, 2),
        "cpu_seconds_total": round(b.cpu_busy_s, 3),
        "memory_bytes": b.memory_used, "memory_limit_bytes": b.memory_total, "memory_peak_bytes": None,
        "memory_cache_bytes": b.memory_cache,
        "swap_bytes": b.swap_used, "swap_total_bytes": b.swap_total,
        "disk_bytes": b.disk_used, "disk_total_bytes": b.disk_total,
        "net_rx_bytes_per_s": _sum(nics, "rx_bytes_per_s"), "net_tx_bytes_per_s": _sum(nics, "tx_bytes_per_s"),
        "net_rx_bytes_total": _total(b.net, 0), "net_tx_bytes_total": _total(b.net, 1),
        "nics": nics, "ipv4": b.ipv4,
        "processes_in_containers": in_containers,
        "processes_host_only": b.processes - in_containers,
        "processes_by_container": dict(sorted(b.by_container.items())),
        "lxcfs": b.lxcfs, "kernel_threads": b.kernel_threads, "lxd_daemon_processes": b.lxd_processes,
    }


def container_row(a: ContainerSample | None, b: ContainerSample, host: HostSample) -> dict[str, Any]:
    """One container's row: CPU % from its cgroup CPU time between a and b."""
    cpu = of_limit = None
    if a is not None and a.cpu_ns is not None and b.cpu_ns is not None and b.time > a.time:
        cpu = round((b.cpu_ns - a.cpu_ns) / 1e9 / (b.time - a.time) * 100, 1)
        if b.cpu_limit_cpus:
            of_limit = round(cpu / b.cpu_limit_cpus, 1)
    nics = _rate(a.net if a else {}, b.net, b.time - a.time if a else 0)
    return {
        "time": datetime.fromtimestamp(host.wall, timezone.utc).isoformat(timespec="milliseconds"),
        "name": b.name, "kind": "container", "state": b.state,
        "processes": b.processes, "tasks": b.tasks, "threads": b.threads,
        "lxd_processes": b.lxd_processes,
        "cpu_percent": cpu, "cpu_percent_of_limit": of_limit, "cpu_limit_cpus": b.cpu_limit_cpus,
        "cpu_limit_kind": b.cpu_limit_kind, "cpu_shares": b.cpu_shares, "cpu_allowance": b.allowance,
        "cpu_seconds_total": round(b.cpu_ns / 1e9, 3) if b.cpu_ns is not None else None,
        "memory_bytes": b.memory, "memory_limit_bytes": b.memory_limit, "memory_peak_bytes": b.memory_peak,
        "swap_bytes": b.swap, "pids_max": b.pids_max, "disk_bytes": b.disk, "disk_source": b.disk_source,
        "net_rx_bytes_per_s": _sum(nics, "rx_bytes_per_s"), "net_tx_bytes_per_s": _sum(nics, "tx_bytes_per_s"),
        "net_rx_bytes_total": _total(b.net, 0), "net_tx_bytes_total": _total(b.net, 1),
        "nics": nics, "ipv4": b.ipv4,
    }


def rows(a: Sample, b: Sample) -> list[dict[str, Any]]:
    """Host row first, then one row per container of sample b."""
    before = {c.name: c for c in a.containers}
    return [host_row(a.host, b.host)] + [container_row(before.get(c.name), c, b.host) for c in b.containers]


def samples(lxd: Lxd, names: list[str] | None, interval: float, count: int | None) -> Iterator[list[dict[str, Any]]]:
    """Yield rows every interval (count times, or forever when count is None)."""
    if not lxd.is_local:  # one host row per member, read through the API
        yield from remote.samples(lxd, names, interval, count)
        return
    sampler = Sampler(lxd, names)
    prev = sampler.sample()
    done = 0
    while count is None or done < count:
        deadline = prev.host.time + interval
        time.sleep(max(0.0, deadline - time.monotonic()))
        cur = sampler.sample()
        yield rows(prev, cur)
        prev, done = cur, done + 1


def _size(v: Any) -> str:
    return units.human_size(v) if v is not None else "-"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def table_rows(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows formatted for people (sizes rounded, used/limit side by side)."""
    out = []
    for r in data:
        mem = _size(r["memory_bytes"]) + " / " + (_size(r["memory_limit_bytes"]) if r["memory_limit_bytes"] else "no limit")
        if r.get("memory_peak_bytes"):
            mem += f" (peak {_size(r['memory_peak_bytes'])})"
        disk = _size(r["disk_bytes"]) + (f" / {_size(r['disk_total_bytes'])}" if r.get("disk_total_bytes") else "")
        name = r["name"] + (f" (load {r['load1']})" if r["kind"] == "host" and r.get("load1") is not None
                            else f" @{r['member']}" if r["kind"] == "container" and r.get("member") else "")
        of_limit = _pct(r["cpu_percent_of_limit"])
        if r["cpu_limit_cpus"]:
            of_limit += f" of {r['cpu_limit_cpus']:g}"
        out.append({
            "name": name, "state": r["state"], "processes": r["processes"],
            "tasks": r["tasks"], "cpu_percent": _pct(r["cpu_percent"]), "cpu_percent_of_limit": of_limit,
            "memory": mem, "swap": _size(r["swap_bytes"]), "disk": disk,
            "net_rx": _size(r["net_rx_bytes_per_s"]) + "/s" if r["net_rx_bytes_per_s"] is not None else "-",
            "net_tx": _size(r["net_tx_bytes_per_s"]) + "/s" if r["net_tx_bytes_per_s"] is not None else "-",
            "ipv4": r["ipv4"],
        })
    return out


HEADERS = ["name", "state", "procs", "tasks", "cpu %", "% of limit", "memory used / limit",
           "swap", "disk", "net rx", "net tx", "ipv4"]


def attribution_rows(host: dict[str, Any]) -> list[dict[str, Any]]:
    """Where the host's processes run: each container, LXD, the kernel, the rest of the host."""
    out = [{"where": f"container {n}", "processes": c} for n, c in host["processes_by_container"].items()]
    other = host["processes_host_only"] - host["kernel_threads"] - host["lxd_daemon_processes"]
    out += [{"where": "host: kernel threads", "processes": host["kernel_threads"]},
            {"where": "host: LXD daemon + container monitors", "processes": host["lxd_daemon_processes"]},
            {"where": "host: everything else", "processes": other},
            {"where": "total (ps -e on the host)", "processes": host["processes"]}]
    return out


def _mb(v: int | None) -> str:
    return units.human_size(v) if v is not None else "unknown"


def explain(data: list[dict[str, Any]]) -> list[str]:
    """Short notes, with this sample's numbers, on why the host's and containers' figures differ."""
    host = data[0]
    if "processes_by_container" not in host:  # a remote: no host /proc to attribute processes
        return ["Remote: host rows come from /1.0/resources of each member (CPUs, memory); "
                "container rows from LXD's instance state, their limits from the configuration. "
                "The remote's cgroup files and /proc are not readable from here."]
    ctrs = [r for r in data[1:] if r["state"] == "RUNNING"]
    notes = []
    by = ", ".join(f"{n}: {c}" for n, c in host["processes_by_container"].items()) or "none"
    other = host["processes_host_only"] - host["kernel_threads"] - host["lxd_daemon_processes"]
    notes.append(
        f"Processes: the host sees {host['processes']}, because it sees every PID namespace: "
        f"{host['processes_in_containers']} run inside containers ({by}), {host['kernel_threads']} are kernel "
        f"threads, {host['lxd_daemon_processes']} are LXD's daemon and its per-container monitors, {other} are the "
        f"host's own services and shells. A container sees only its own PID namespace"
        + (": " + ", ".join(f"{r['name']} sees {r['processes']}" for r in ctrs) if ctrs else "") + ".")
    for r in ctrs:
        if r["tasks"] is not None and r["processes"] is not None and r["tasks"] != r["processes"]:
            notes.append(f"Threads vs processes: {r['name']} runs {r['processes']} processes but its pids cgroup "
                         f"counts {r['tasks']} tasks: every thread is a task, and limits.processes "
                         f"({r['pids_max'] or 'unlimited'}) is checked against tasks, not processes.")
        if r["lxd_processes"] is not None and r["lxd_processes"] != r["processes"]:
            notes.append(f"LXD reports {r['lxd_processes']} processes for {r['name']}: LXD's figure is its pids "
                         f"cgroup counter (threads included), not what `ps` inside shows ({r['processes']}).")
    notes.append(f"Threads: the host's {host['processes']} processes run {host['threads']} threads; `tasks` "
                 "counts threads, `processes` counts thread groups.")
    mem_sum = sum(r["memory_bytes"] or 0 for r in ctrs)
    notes.append(
        f"Memory: the host's memory_bytes ({_mb(host['memory_bytes'])} of {_mb(host['memory_limit_bytes'])}) is "
        f"what `free` calls used, without its {_mb(host['memory_cache_bytes'])} of page cache and buffers. A "
        f"container's memory_bytes is its memory cgroup's charge, which includes the page cache and tmpfs "
        f"files it caused: that is what its limit is enforced against. All containers together: {_mb(mem_sum)}. "
        + ("lxcfs runs here, so `free` inside a container shows its own limit and use."
           if host.get("lxcfs") else
           f"No lxcfs here: `free` inside a container shows the host's {_mb(host['memory_limit_bytes'])} total, "
           "not its limit."))
    pooled = [r for r in ctrs if r.get("disk_source") == "lxd"]
    if pooled:
        notes.append("Disk: for " + ", ".join(f"{r['name']} ({_mb(r['disk_bytes'])})" for r in pooled)
                     + " disk_bytes is the storage pool's own count, what a root size quota is checked against: "
                     "on a copy-on-write pool only the blocks not shared with the image. Others are summed "
                     "from their files, like du. The host's disk_bytes is its root filesystem's used space.")
    for r in ctrs:
        used = "-" if r["cpu_percent"] is None else f"{r['cpu_percent']:.1f}%"
        if r["cpu_limit_kind"] == "quota":
            notes.append(f"CPU: {r['name']} has a hard CFS quota of {r['cpu_limit_cpus']:g} CPU: it used {used} "
                         f"of one CPU = {r['cpu_percent_of_limit']}% of its limit, and cannot get more even "
                         "when the host is idle.")
        elif r["cpu_limit_kind"] == "cpuset":
            notes.append(f"CPU: {r['name']} is pinned to {r['cpu_limit_cpus']:g} CPU(s) (a cpuset, a hard "
                         f"ceiling of {r['cpu_limit_cpus'] * 100:g}%): it used {used}.")
        elif r["cpu_allowance"]:
            notes.append(f"CPU: {r['name']} has limits.cpu.allowance={r['cpu_allowance']}, a soft share "
                         f"(cpu.shares={r['cpu_shares']}): it only counts while CPUs are contended, so {r['name']} "
                         f"may use the whole host when it is idle; it used {used}.")
        else:
            notes.append(f"CPU: {r['name']} has no CPU limit: it may use all host CPUs; it used {used}.")
    cpu_sum = sum(r["cpu_percent"] or 0 for r in ctrs)
    if (host["cpu_percent_of_limit"] or 0) >= 90:
        short = [f"{r['name']} got {r['cpu_percent_of_limit']}% of its {r['cpu_limit_cpus']:g}-CPU ceiling"
                 for r in ctrs if r["cpu_percent_of_limit"] is not None and r["cpu_percent_of_limit"] < 90]
        notes.append(f"Contention: the host's CPUs are {host['cpu_percent_of_limit']:.0f}% busy, so containers "
                     "compete for them: this is when soft shares decide who runs"
                     + (" and a ceiling is not reached (" + "; ".join(short) + ")" if short else "") + ".")
    if host["cpu_percent"] is not None:
        notes.append(
            f"What the host counts that a container cannot see: host CPU {host['cpu_percent']:.1f}% "
            f"(100 = one CPU) includes the containers' {cpu_sum:.1f}% plus "
            f"{max(0.0, host['cpu_percent'] - cpu_sum):.1f}% of its own (kernel, LXD, other services); "
            f"load {host['load1']} counts runnable tasks of every container too. Containers cannot see the "
            "host's kernel threads, LXD, or each other.")
    return notes
