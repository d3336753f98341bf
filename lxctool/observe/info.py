"""`info`: each configured limit beside the value the kernel enforces, plus current usage."""

from __future__ import annotations

import os
from typing import Any, Mapping

from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.host import tc
from lxctool.host.cgroups import CgroupReader, CgroupValues
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance
from lxctool.observe import remote


def _dev_name(dev: str) -> str:
    """'7:0' -> '7:0 (loop0)' where sysfs knows the block device."""
    try:
        return f"{dev} ({os.path.basename(os.readlink(f'/sys/dev/block/{dev}'))})"
    except OSError:
        return dev


def _effective_cpu(cg: CgroupValues) -> tuple[Any, str]:
    cpus = units.parse_cpuset(cg.cpuset) if cg.cpuset else ()
    return cg.cpuset, f"cpuset {cg.cpuset} ({len(cpus)} CPU{'s' if len(cpus) != 1 else ''})"


def _effective_allowance(cg: CgroupValues, configured: str | None) -> tuple[Any, str]:
    if cg.cpu_quota_us is not None and cg.cpu_period_us:
        return ({"quota_us": cg.cpu_quota_us, "period_us": cg.cpu_period_us},
                f"quota {cg.cpu_quota_us}us / period {cg.cpu_period_us}us "
                f"= {cg.cpu_quota_us / cg.cpu_period_us:g} CPU (hard)")
    share = cg.cpu_shares if cg.cpu_shares is not None else cg.cpu_weight
    label = "cpu.shares" if cg.cpu_shares is not None else "cpu.weight"
    note = " (a soft share, not a cap)" if configured and configured.endswith("%") else ""
    return {"shares": share}, f"no quota; {label}={share}{note}"


def _bytes_text(value: int | None) -> str:
    return "unlimited" if value is None else f"{value} B ({units.human_size(value)})"


def _swap(cg: CgroupValues) -> tuple[Any, str]:
    """Swap as the kernel holds it: v1 LXD forbids swap with swappiness 0, v2 with swap.max 0."""
    if cg.swappiness is not None:
        kind = "memory+swap" if cg.memory_swap_limit is not None else "no memory+swap cap"
        text = (f"swappiness {cg.swappiness}" + (" (swap off)" if cg.swappiness == 0 else "")
                + f"; {kind}" + (f" {_bytes_text(cg.memory_swap_limit)}" if cg.memory_swap_limit else ""))
        return {"swappiness": cg.swappiness, "memory_swap_limit": cg.memory_swap_limit}, text
    return {"swap_max": cg.memory_swap_limit}, f"swap.max {_bytes_text(cg.memory_swap_limit)}"


def _blkio(cg: CgroupValues, what: str) -> tuple[Any, str]:
    values = cg.blkio.get(what, {})
    if not values:
        return None, "unlimited"
    return values, ", ".join(f"{_dev_name(d)}: {v}" for d, v in values.items())


def limit_rows(inst: Instance, cg: CgroupValues | None) -> list[dict[str, Any]]:
    """One row per limit kind: configured (LXD), effective (kernel) and where it was read."""
    configured = limitmap.configured_limits(inst.expanded_config, inst.expanded_devices)
    rows: list[dict[str, Any]] = []

    def add(key: str, effective: tuple[Any, str], source: str | None) -> None:
        rows.append({"limit": key, "configured": configured.get(key), "effective": effective[0],
                     "effective_text": effective[1], "source": source})

    if cg is None:
        for key, value in configured.items():
            rows.append({"limit": key, "configured": value, "effective": None,
                         "effective_text": "not running", "source": None})
        return rows
    p = cg.path
    add("limits.cpu", _effective_cpu(cg), p.get("cpuset"))
    add("limits.cpu.allowance", _effective_allowance(cg, configured.get("limits.cpu.allowance")),
        p.get("cpu_quota") if cg.cpu_quota_us is not None else p.get("cpu_shares"))
    add("limits.memory", (cg.memory_limit, _bytes_text(cg.memory_limit)), p.get("memory_limit"))
    add("limits.memory.swap", _swap(cg), p.get("swappiness") if cg.swappiness is not None
        else p.get("memory_swap_limit"))
    add("limits.processes", (cg.pids_max, "unlimited" if cg.pids_max is None else str(cg.pids_max)),
        p.get("pids_max"))
    add("root.limits.read", _blkio(cg, "rbps" if "rbps" in cg.blkio or "riops" not in cg.blkio else "riops"),
        p.get("blkio_rbps") or p.get("io_max"))
    add("root.limits.write", _blkio(cg, "wbps" if "wbps" in cg.blkio or "wiops" not in cg.blkio else "wiops"),
        p.get("blkio_wbps") or p.get("io_max"))
    if configured.get("root.size"):
        pool = inst.root_pool
        add("root.size", (None, f"quota kept by the storage pool {pool} (no cgroup file)"), None)
    veth = inst.host_veth
    for key, direction in (("eth0.limits.ingress", "ingress"), ("eth0.limits.egress", "egress")):
        rate, text, source = tc.effective_rate(veth, direction)
        if configured.get(key) and rate is None and veth:
            text = f"GONE: configured but not in place ({text})"
        if configured.get(key) or rate is not None:
            add(key, (rate, text), source)
    return rows


def usage(state: Mapping[str, Any], cg: CgroupValues | None) -> dict[str, Any]:
    """Current use, in the shared field vocabulary."""
    mem = state.get("memory") or {}
    return {
        "processes": state.get("processes"),
        "tasks": cg.pids_current if cg else None,
        "cpu_seconds": round(cg.cpu_usage_ns / 1e9, 3) if cg and cg.cpu_usage_ns is not None else None,
        "memory_bytes": cg.memory_usage if cg else mem.get("usage"),
        "memory_peak_bytes": cg.memory_peak if cg else mem.get("usage_peak"),
        "swap_bytes": cg.swap_usage if cg else mem.get("swap_usage"),
        "oom_kills": cg.oom_kills if cg else None,
        "disk_bytes": ((state.get("disk") or {}).get("root") or {}).get("usage"),
    }


def info(lxd: Lxd, name: str) -> dict[str, Any]:
    """Everything `lxctool info` shows about one container."""
    if not lxd.is_local:  # the cgroup files and qdiscs are on the remote machine
        return remote.info(lxd, name)
    inst = Instance(lxd.require_instance(name), lxd.project).with_state(lxd.instance_state(name))
    reader = CgroupReader()
    cg = reader.read(name, lxd.project) if inst.running and reader.exists(name, lxd.project) else None
    return {
        "name": name,
        "state": str(inst.state.get("status") or "").upper(),
        "ipv4": inst.ipv4,
        "pid": inst.state.get("pid") or None,
        "host_veth": inst.host_veth,
        "cgroup_layout": reader.layout,
        "limits": limit_rows(inst, cg),
        "usage": usage(inst.state, cg),
    }
