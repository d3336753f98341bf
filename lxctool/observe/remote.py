"""`info` and `compare` on a remote: only what LXD's API offers, each value saying where it came from.

A remote's cgroup files, tc qdiscs and /proc are on another machine. What stays readable is the
instance state (status, processes, CPU time, memory, disk, NIC counters), /1.0/resources per
cluster member, /1.0/metrics (its MemTotal is the memory the kernel grants the container), and
reads inside the container through exec (/proc/1/status gives the CPUs it may run on).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.core.errors import LxdError
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.lxd.cluster import members
from lxctool.lxd.views import Instance

SRC_STATE = "api: /1.0/instances/NAME/state"
SRC_METRICS = "api: /1.0/metrics lxd_memory_MemTotal_bytes"
SRC_EXEC_CPUS = "exec in container: /proc/1/status Cpus_allowed_list"
NOT_READABLE = "not readable through the API (the kernel's cgroup files are on the remote host)"


def _metric_memtotal(lxd: Lxd, name: str) -> int | None:
    """MemTotal LXD reports for the container in /1.0/metrics, or None."""
    try:
        text = lxd.metrics_text()
    except LxdError:
        return None
    if text is None:
        return None
    pat = re.compile(r'^lxd_memory_MemTotal_bytes\{[^}]*name="' + re.escape(name) + r'"[^}]*\}\s+(\S+)$')
    for line in text.splitlines():
        m = pat.match(line)
        if m:
            return int(float(m.group(1)))
    return None


def _exec_cpus(lxd: Lxd, name: str) -> str | None:
    """The CPU list the container's init may run on, read inside it."""
    try:
        res = lxd.exec(name, ["cat", "/proc/1/status"], timeout=15)
    except LxdError:
        return None
    for line in res.stdout.splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return None


def info(lxd: Lxd, name: str) -> dict[str, Any]:
    """`lxctool info` on a remote: configured limits beside what the API shows, with sources."""
    inst = lxd.require_instance(name)
    state = lxd.instance_state(name)
    running = state.get("status") == "Running"
    view = Instance(inst)
    configured = limitmap.configured_limits(view.expanded_config, view.expanded_devices)
    rows: list[dict[str, Any]] = []

    def add(key: str, value: Any, text: str, source: str | None) -> None:
        rows.append({"limit": key, "configured": configured.get(key), "effective": value,
                     "effective_text": text, "source": source})

    if running:
        cpus = _exec_cpus(lxd, name)
        add("limits.cpu", cpus, f"may run on CPUs {cpus}" if cpus else "unknown",
            SRC_EXEC_CPUS if cpus else None)
        memtotal = _metric_memtotal(lxd, name)
        add("limits.memory", memtotal,
            f"{memtotal} B ({units.human_size(memtotal)}) granted (LXD caches metrics a few seconds)"
            if memtotal else "unknown",
            SRC_METRICS if memtotal else None)
    for key, value in configured.items():
        if running and key in ("limits.cpu", "limits.memory"):
            continue
        rows.append({"limit": key, "configured": value, "effective": None,
                     "effective_text": NOT_READABLE if running else "not running", "source": None})
    mem = state.get("memory") or {}
    cpu_ns = (state.get("cpu") or {}).get("usage")
    return {
        "name": name,
        "member": inst.get("location") or None,
        "state": (state.get("status") or "").upper(),
        "ipv4": ipv4_addresses(state),
        "pid": None,  # a PID on another machine means nothing here
        "host_veth": None,
        "cgroup_layout": "remote (read through the API)",
        "limits": rows,
        "usage": {
            "processes": state.get("processes"),
            "tasks": None,
            "cpu_seconds": round(cpu_ns / 1e9, 3) if cpu_ns is not None else None,
            "memory_bytes": mem.get("usage"),
            "memory_peak_bytes": mem.get("usage_peak"),
            "swap_bytes": mem.get("swap_usage"),
            "oom_kills": None,
            "disk_bytes": ((state.get("disk") or {}).get("root") or {}).get("usage"),
        },
        "sources": {"usage": SRC_STATE, "limits.cpu": SRC_EXEC_CPUS, "limits.memory": SRC_METRICS,
                    "other limits": NOT_READABLE},
    }


def _nic_totals(state: dict[str, Any]) -> tuple[int, int]:
    rx = tx = 0
    for nic, data in (state.get("network") or {}).items():
        if nic != "lo":
            c = data.get("counters") or {}
            rx += int(c.get("bytes_received", 0))
            tx += int(c.get("bytes_sent", 0))
    return rx, tx


def _cpu_limit(config: Mapping[str, str]) -> tuple[float | None, str | None]:
    """The configured hard CPU ceiling (config, not kernel: the kernel is not readable here)."""
    allowance = config.get("limits.cpu.allowance", "")
    m = re.fullmatch(r"(\d+)ms/(\d+)ms", allowance)
    if m and int(m.group(2)):
        return round(int(m.group(1)) / int(m.group(2)), 4), "quota"
    if config.get("limits.cpu"):
        try:
            return float(units.parse_cpu(config["limits.cpu"]).cpu_count or 0) or None, "cpuset"
        except units.UnitError:
            return None, None
    return None, None


def _hosts(addresses: str) -> list[str]:
    """'https://10.0.0.5:8443' or '127.0.0.1:8443,...' -> the host addresses, as ipv4 lists are."""
    out = []
    for a in filter(None, addresses.split(",")):
        host = urllib.parse.urlsplit(a if "://" in a else f"//{a}").hostname
        if host:
            out.append(host)
    return out


def host_rows(lxd: Lxd, wall: float, counts: dict[str, int]) -> list[dict[str, Any]]:
    """One host row per cluster member (one for a lone server), from /1.0/resources."""
    stamp = datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")
    out = []
    for m in members(lxd):
        row: dict[str, Any] = {
            "time": stamp, "name": f"host:{m['name']}", "kind": "host", "member": m["name"],
            "state": m["status"].upper(), "processes": None, "tasks": None, "threads": None,
            "cpu_percent": None, "cpu_percent_of_limit": None, "cpu_limit_cpus": None, "load1": None,
            "memory_bytes": None, "memory_limit_bytes": None, "memory_peak_bytes": None,
            "swap_bytes": None, "disk_bytes": None, "disk_total_bytes": None,
            "net_rx_bytes_per_s": None, "net_tx_bytes_per_s": None, "ipv4": _hosts(m.get("address", "")),
            "processes_in_containers": (counts.get(m["name"], 0) if m["clustered"]
                                        else sum(counts.values())),
            "source": "api: /1.0/resources",
            "error": m.get("message") if m["status"] != "Online" else None,
        }
        if m["status"] == "Online":
            try:
                res = lxd.host_resources(m["name"] if m["clustered"] else None)
                row["cpu_limit_cpus"] = float((res.get("cpu") or {}).get("total") or 0) or None
                row["memory_bytes"] = (res.get("memory") or {}).get("used")
                row["memory_limit_bytes"] = (res.get("memory") or {}).get("total")
            except LxdError as exc:
                row["error"] = exc.message
        out.append(row)
    return out


def _container_row(inst: dict[str, Any], prev: dict[str, Any] | None, dt: float,
                   stamp: str) -> dict[str, Any]:
    state = inst.get("state") or {}
    config = Instance(inst).expanded_config
    mem = state.get("memory") or {}
    cpu_ns = (state.get("cpu") or {}).get("usage")
    limit_cpus, kind = _cpu_limit(config)
    cpu = rx = tx = None
    if prev is not None and dt > 0:
        pstate = prev.get("state") or {}
        pcpu = (pstate.get("cpu") or {}).get("usage")
        if cpu_ns is not None and pcpu is not None:
            cpu = round(max(0, cpu_ns - pcpu) / 1e9 / dt * 100, 1)
        (r1, t1), (r0, t0) = _nic_totals(state), _nic_totals(pstate)
        rx, tx = round(max(0, r1 - r0) / dt, 1), round(max(0, t1 - t0) / dt, 1)
    limit = config.get("limits.memory")
    procs = state.get("processes")
    return {
        "time": stamp, "name": inst["name"], "kind": "container", "member": inst.get("location") or None,
        "state": (state.get("status") or inst.get("status") or "").upper(),
        "processes": procs if isinstance(procs, int) and procs >= 0 else None, "tasks": None,
        "threads": None, "lxd_processes": procs,
        "cpu_percent": cpu, "cpu_percent_of_limit": round(cpu / limit_cpus, 1) if cpu is not None and limit_cpus else None,
        "cpu_limit_cpus": limit_cpus, "cpu_limit_kind": kind, "cpu_shares": None,
        "cpu_allowance": config.get("limits.cpu.allowance"),
        "memory_bytes": mem.get("usage"), "memory_peak_bytes": mem.get("usage_peak"),
        "memory_limit_bytes": units.parse_size(limit) if limit and not limit.endswith("%") else None,
        "swap_bytes": mem.get("swap_usage"), "pids_max": None,
        "disk_bytes": ((state.get("disk") or {}).get("root") or {}).get("usage"), "disk_source": "lxd",
        "net_rx_bytes_per_s": rx, "net_tx_bytes_per_s": tx, "nics": {}, "ipv4": ipv4_addresses(state),
        "source": "api: instance state (limits from config)",
    }


def samples(lxd: Lxd, names: list[str] | None, interval: float,
            count: int | None) -> Iterator[list[dict[str, Any]]]:
    """compare rows through the API: host rows per member, then containers; rates between reads."""
    def read() -> tuple[float, dict[str, dict[str, Any]]]:
        return time.monotonic(), {i["name"]: i for i in lxd.instances_full()}

    prev_t, prev = read()
    done = 0
    while count is None or done < count:
        time.sleep(max(0.0, prev_t + interval - time.monotonic()))
        now, cur = read()
        wall = time.time()
        stamp = datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")
        counts: dict[str, int] = {}
        for inst in cur.values():
            loc = inst.get("location") or ""
            counts[loc] = counts.get(loc, 0) + 1
        wanted = names if names is not None else sorted(cur)
        rows = host_rows(lxd, wall, counts)
        rows += [_container_row(cur[n], prev.get(n), now - prev_t, stamp) for n in wanted if n in cur]
        yield rows
        prev_t, prev, done = now, cur, done + 1
