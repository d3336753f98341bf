"""Container lifecycle after launch (see launch.py): list, start/stop/delete, live limits; and
network create. Each change runs observe -> plan (pure) -> apply (the one executor)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lxctool.apply.executor import apply
from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.core.desired import desired_limits
from lxctool.core.errors import NotFound, PreflightError
from lxctool.core.ownership import refuse_foreign
from lxctool.core.plan import (Desired, DesiredNetwork, Observed, ObservedInstance, Op, OpKind, plan,
                               plan_network_delete, plan_state)
from lxctool.core.spec import Limits
from lxctool.host.caps import HostCapabilities
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.lxd.views import Instance
from lxctool.net.network import users
from lxctool.observe.state import Want, observe
from lxctool.report.progress import progress


DELETE_PARALLEL = 4  # bounded: more only queues up in LXD on a small host


def row(inst: dict[str, Any], state: dict[str, Any] | None) -> dict[str, Any]:
    """One container as a data row in the shared vocabulary (DESIGN.md)."""
    view = Instance(inst)
    config, devices = view.expanded_config, view.expanded_devices
    state = state or {}
    mem = (state.get("memory") or {})
    limit = config.get("limits.memory")
    return {
        "name": inst.get("name"),
        "state": (state.get("status") or inst.get("status") or "").upper(),
        "ipv4": ipv4_addresses(state),
        "limits": limitmap.summary(config, devices),
        "processes": state.get("processes") if state.get("processes", -1) >= 0 else None,
        "memory_bytes": mem.get("usage") or None,
        "memory_limit_bytes": units.parse_size(limit) if limit and not limit.endswith("%") else None,
        **({"member": inst["location"]} if inst.get("location") not in (None, "", "none") else {}),
    }


def list_rows(lxd: Lxd, all_instances: bool = False) -> list[dict[str, Any]]:
    """Rows of the containers lxctool manages, from one batched request."""
    rows = []
    for inst in lxd.instances_full():
        # a cluster member that does not answer leaves only a stub (status Error, no config)
        unreachable = inst.get("config") is None and inst.get("location") not in (None, "", "none")
        if all_instances or Instance(inst).managed or unreachable:
            rows.append(row(inst, inst.get("state")))
    return sorted(rows, key=lambda r: r["name"])


def observe_named(lxd: Lxd, names: list[str], caps: Any = None, limits: Limits | None = None) -> Observed:
    """Observe the named containers; NotFound naming the first missing one, before any change."""
    observed = observe(lxd, caps, Want(instances=tuple(names), limits=limits or Limits()))
    for name in names:
        if name not in observed.instances:
            where = f" in project {lxd.project}" if lxd.project else ""
            raise NotFound(f"NAME: no container named {name!r}{where}; see `lxctool list`")
    return observed


def plan_change_state(lxd: Lxd, names: list[str], action: str, force: bool = False) -> list[Op]:
    """Ops that start / stop / restart each container; unknown names, and containers lxctool did
    not create (unless force), are refused before any change."""
    return plan_state(observe_named(lxd, names), names, action, force)


def change_state(lxd: Lxd, ops: list[Op]) -> list[dict[str, Any]]:
    """Apply start/stop/restart ops; rows of the containers afterwards."""
    for op in ops:
        if op.kind == OpKind.NOOP:
            progress(f"{op.target} is {op.reason}")
    apply(lxd, ops)
    return [row(lxd.instance(op.target) or {}, lxd.instance_state(op.target)) for op in ops]


def plan_delete(lxd: Lxd, names: list[str], force: bool = False) -> list[Op]:
    """Delete ops; refuse containers lxctool did not create unless force (all checked first)."""
    observed = observe_named(lxd, names)
    wanted = set(names)
    by_name = {op.target: op for op in plan(Desired(), observed, prune=lambda o: o.name in wanted, force=force)}
    return [replace(by_name[n], reason="") for n in dict.fromkeys(names)]  # asked for by name


def delete(lxd: Lxd, ops: list[Op]) -> list[str]:
    """Apply delete ops; return the names deleted."""
    # LXD stops and deletes containers concurrently: 20 at 4 at once took a third of the time here
    done = [str(result) for _, result in apply(lxd, ops, parallel=min(DELETE_PARALLEL, len(ops)))]
    if done:
        from lxctool.host import shaping  # lazy: ~8 ms (tc, desired); only a delete needs it

        shaping.remove_orphans(lxd)  # IFBs of containers removed outside lxctool
    return done


def prepare_limits(lxd: Lxd, name: str, new: Limits, caps: HostCapabilities,
                   force: bool = False) -> tuple[ObservedInstance, list[Op]]:
    """Validate a live limits change; return (the container as observed, ops: update-live or noop).

    A container lxctool did not create is refused unless force, also when nothing would change."""
    observed = observe_named(lxd, [name], caps, new)
    current = observed.instances[name]
    # checked on the change asked, not only on the ops: a noop is refused too (allowed or not must
    # not depend on the values the container has now)
    refuse_foreign([Op(OpKind.UPDATE_LIVE, name)], observed, force)
    return current, plan(Desired(instances=(desired_limits(current, new, observed),)), observed, force=force)


def plan_network(lxd: Lxd, name: str, config: dict[str, str], description: str) -> list[Op]:
    """Ops that create bridge `name` with its isolation rule (validated by the caller)."""
    observed = observe(lxd, None, Want(networks=(name,)))
    return plan(Desired(networks=(DesiredNetwork(name, config, description),)), observed)


def plan_delete_network(lxd: Lxd, name: str, force: bool = False) -> list[Op]:
    """Ops that detach the containers on network `name` (removing their NICs on it) and delete it.

    Refused before any change while a profile uses it; without force also while containers use it
    or when it, or a container on it, was not created by lxctool.
    """
    insts, profs = users(lxd, name)  # NotFound when there is no such network
    if profs:
        raise PreflightError(f"NAME: {name} is used by profile(s) {', '.join(profs)}; nothing changed; "
                             "remove it from the profile first")
    observed = observe(lxd, None, Want(instances=tuple(insts), networks=(name,)))
    names = {p for o in observed.instances.values() for p in o.profiles}
    profiles = {p: rec for p in sorted(names) if (rec := lxd.profile(p)) is not None}
    return plan_network_delete(replace(observed, profiles=profiles), name, force)


def require_running(lxd: Lxd, name: str) -> dict[str, Any]:
    """The instance record; PreflightError unless it is running."""
    inst = lxd.require_instance(name)
    if inst.get("status") != "Running":
        raise PreflightError(f"NAME: {name} is {inst.get('status', 'not running').lower()}; "
                             f"start it with `lxctool start {name}`")
    return inst
