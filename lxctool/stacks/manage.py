"""`down`, `ps`, `stack list` and the replica addressing of `exec`/`logs`/`restart`: everything
found through the stack and service labels (user.lxctool.*), so two stacks never touch each
other's containers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.core.errors import NotFound, SpecError
from lxctool.core.names import FILE_PROFILE_PREFIX
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.lxd.views import Instance
from lxctool.report.progress import progress
from lxctool.stacks import model as m
import datetime
from lxctool.stacks.load import read
from lxctool.apply.executor import apply
from lxctool.core.plan import Op, OpKind
from lxctool.stacks.handlers import STACK_HANDLERS
from lxctool.stacks import templates
from lxctool.stacks.health import probe_once

PS_COLUMNS = ["name", "service", "state", "member", "ipv4", "health", "limits", "cpu_percent",
              "cpu_percent_of_limit", "memory_bytes", "memory_limit_bytes", "memory_percent_of_limit"]


def cpu_limit_cpus(config: dict[str, str]) -> float | None:
    """The CPUs a container may use: a hard quota, else its CPU count or set; None when unlimited."""
    allowance = config.get("limits.cpu.allowance")
    try:
        if allowance and units.parse_allowance(allowance).cpus is not None:
            return units.parse_allowance(allowance).cpus
        if config.get("limits.cpu"):
            return units.parse_cpu(config["limits.cpu"]).cpu_count
    except units.UnitError:
        return None
    return None


def cpu_percent_since_start(inst: dict[str, Any]) -> float | None:
    """Average CPU use since the container started (100 = one host CPU), from the one read."""
    cpu_ns = ((inst.get("state") or {}).get("cpu") or {}).get("usage")
    started = inst.get("last_used_at") or ""
    try:
        since = datetime.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - since).total_seconds()
    if not cpu_ns or elapsed <= 0 or inst.get("status") != "Running":
        return None
    return round(100 * cpu_ns / 1e9 / elapsed, 1)


def stack_name(path: Path) -> str:
    """The stack's name from its file (only name: is needed, so down works on a broken file)."""
    raw = read(path)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{path}: name: missing; a stack file names its stack")
    return name


def members(instances: list[dict[str, Any]], stack: str) -> list[dict[str, Any]]:
    """The stack's containers, by service and replica."""
    own = [i for i in instances if (i.get("config") or {}).get(m.STACK_KEY) == stack]
    return sorted(own, key=lambda i: (i["config"].get(m.SERVICE_KEY, ""), int(i["config"].get(m.REPLICA_KEY, 0) or 0)))


def down(lxd: Lxd, stack: str, volumes: bool, parallel: int) -> list[str]:
    """Remove the stack's containers, networks and unused file profiles (volumes with volumes=True)."""
    everything = lxd.instances_full()
    insts = [i["name"] for i in members(everything, stack)]
    ops = [Op(OpKind.DELETE, name, reason="down") for name in insts]
    for net in lxd.networks():
        if (net.get("config") or {}).get(m.STACK_KEY) == stack:
            ops.append(Op(OpKind.DELETE_NETWORK, net["name"], after=tuple(insts)))
    # a profile made from a profiles/ file that only this stack's containers use goes with them
    ours = {p for i in everything if i["name"] in insts for p in i.get("profiles") or ()}
    theirs = {p for i in everything if i["name"] not in insts for p in i.get("profiles") or ()}
    for pname in sorted(p for p in ours - theirs if p.startswith(FILE_PROFILE_PREFIX)):
        ops.append(Op(OpKind.DELETE_PROFILE, pname, after=tuple(insts)))
    apply(lxd, ops, parallel=max(1, parallel), handlers=STACK_HANDLERS)
    removed = [op.target for op in ops]
    if volumes:
        for pool_rec in lxd.storage_pools():
            for vol in lxd.storage_volumes(pool_rec["name"]):
                if vol.get("type") == "custom" and (vol.get("config") or {}).get(m.STACK_KEY) == stack:
                    progress(f"deleting volume {vol['name']}")
                    lxd.delete_volume(pool_rec["name"], vol["name"])
                    removed.append(vol["name"])

        templates.forget(stack)
    return removed


def ps_rows(lxd: Lxd, stack: m.Stack, probe: bool = True,
            instances: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per replica from one batched read (plus each command health probe, run once)."""
    rows = []
    for inst in members(lxd.instances_full() if instances is None else instances, stack.name):
        seen = Instance(inst)
        cfg, devs = dict(seen.expanded_config), {k: dict(v) for k, v in seen.expanded_devices.items()}
        state = inst.get("state") or {}
        ips = ipv4_addresses(state)
        svc_name = cfg.get(m.SERVICE_KEY, "")
        svc = next((s for s in stack.services if s.name == svc_name), None)
        running = inst.get("status") == "Running"
        health = "-"
        if svc is not None and svc.healthcheck is not None:
            health = ("healthy" if probe_once(lxd, inst["name"], svc.healthcheck, ips[0] if ips else None).healthy
                      else "unhealthy") if running and probe else "stopped" if not running else "not probed"
        limit = cfg.get("limits.memory")
        limit_b = units.parse_size(limit) if limit and not limit.endswith("%") else None
        mem = (state.get("memory") or {}).get("usage") or None
        cpu_pct, cpu_cap = cpu_percent_since_start(inst), cpu_limit_cpus(cfg)
        rows.append({
            "name": inst["name"], "service": svc_name, "state": (inst.get("status") or "").upper(),
            "member": inst.get("location") if inst.get("location") not in (None, "", "none") else None,
            "ipv4": ips, "health": health, "limits": limitmap.summary(cfg, devs),
            "cpu_percent": cpu_pct,
            "cpu_percent_of_limit": round(cpu_pct / cpu_cap, 1) if cpu_pct is not None and cpu_cap else None,
            "memory_bytes": mem,
            "memory_limit_bytes": limit_b,
            "memory_percent_of_limit": round(100 * mem / limit_b, 1) if mem and limit_b else None,
        })
    return rows


def stack_list(lxd: Lxd) -> list[dict[str, Any]]:
    """Every stack on this host (by label) with how many of its containers run."""
    seen: dict[str, dict[str, Any]] = {}
    for inst in lxd.instances_full():
        name = (inst.get("config") or {}).get(m.STACK_KEY)
        if not name:
            continue
        row = seen.setdefault(name, {"name": name, "containers": 0, "running": 0, "services": set()})
        row["containers"] += 1
        row["running"] += inst.get("status") == "Running"
        row["services"].add(inst["config"].get(m.SERVICE_KEY, ""))
    out = []
    for row in sorted(seen.values(), key=lambda r: r["name"]):
        state = "running" if row["running"] == row["containers"] else "stopped" if not row["running"] else "partial"
        out.append({**row, "services": ",".join(sorted(row["services"])), "state": state})
    return out


def replicas(lxd: Lxd, stack: m.Stack, which: list[str]) -> list[str]:
    """Container names for SERVICE or SERVICE/N items (every service when which is empty)."""
    own = members(lxd.instances_full(), stack.name)
    names = [i["name"] for i in own]
    if not which:
        return names
    out = []
    for item in which:
        svc, _, n = item.partition("/")
        try:
            stack.service(svc)
        except KeyError:
            raise SpecError(f"SERVICE: {svc!r} is not a service of stack {stack.name}; use one of "
                            f"{', '.join(s.name for s in stack.services)}") from None
        wanted = [m.instance_name(stack.name, svc, int(n))] if n.isdigit() else \
            [i["name"] for i in own if i["config"].get(m.SERVICE_KEY) == svc]
        found = [x for x in wanted if x in names]
        if not found:
            raise NotFound(f"SERVICE: {item} has no container; run `lxctool up -f FILE` first")
        out += found
    return out
