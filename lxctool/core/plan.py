"""Desired state + observed state -> a list of operations (plain data). No I/O here.

`launch`, `limits`, `start/stop/delete` and `network create` print these ops with --dry-run and
hand them to the one executor (apply/executor.py) otherwise; stacks build a `Desired` with many
instances, networks and volumes and use the same planner and executor.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from lxctool.core.limits import DEVICE_LIMIT_KEYS
from lxctool.core.model import (HASH_KEY, IGNORED_PREFIXES, LIVE_KEYS, LIVE_PREFIXES, MISSING, Desired,
                                DesiredInstance, DesiredNetwork, DesiredProfile, DesiredVolume, HostFacts,
                                Observed, ObservedInstance, Op, OpKind, ProfileFile, clean_config, kind_name)
from lxctool.core.names import ISOLATED_KEY
from lxctool.core.errors import NeedsForce, PreflightError
from lxctool.core.ownership import foreign_lines, refuse_foreign

__all__ = ["HASH_KEY", "IGNORED_PREFIXES", "MISSING", "Desired", "DesiredInstance", "DesiredNetwork",
           "DesiredProfile", "DesiredVolume", "HostFacts", "Observed", "ObservedInstance", "Op", "OpKind",
           "ProfileFile", "kind_name", "instance_changes", "plan", "plan_network_delete", "plan_state"]


# -- instances --------------------------------------------------------------------------------
def _is_live_key(key: str) -> bool:
    return key.startswith(LIVE_PREFIXES) or key in LIVE_KEYS


def instance_changes(d: DesiredInstance, o: ObservedInstance,
                     images: Mapping[str, str]) -> tuple[str, dict[str, str], dict[str, dict[str, str]]]:
    """(recreate reason or "", live config changes, devices to replace whole) from d to o."""
    fp = images.get(d.image)
    if fp and o.base_image and fp != o.base_image:
        return f"image changed ({d.image} is now {fp[:12]})", {}, {}
    if tuple(d.profiles) != tuple(o.profiles):
        return f"profiles changed ({','.join(o.profiles)} -> {','.join(d.profiles)})", {}, {}
    want, have = clean_config(d.config), clean_config(o.config)
    config: dict[str, str] = {}
    for key in sorted(set(want) | set(have)):
        if want.get(key) == have.get(key):
            continue
        if not _is_live_key(key):
            return f"{key} changed (not changeable on a running container)", {}, {}
        config[key] = want.get(key, "")
    devices: dict[str, dict[str, str]] = {}
    for dname in sorted(set(d.devices) | set(o.devices)):
        dd, od = d.devices.get(dname), o.devices.get(dname)
        if dd == od:
            continue
        if od is None:  # a device the profile gives, now set on the instance (limits added)
            od = o.expanded_devices.get(dname)
        if dd is None or od is None:
            return f"device {dname} {'added' if od is None else 'removed'}", {}, {}
        keys = {k for k in set(dd) | set(od) if dd.get(k) != od.get(k)}
        fixed = keys - set(DEVICE_LIMIT_KEYS.get(dname, ()))
        if fixed:
            return f"device {dname} changed ({', '.join(sorted(fixed))})", {}, {}
        devices[dname] = dict(dd)
    return "", config, devices


def _live_detail(config: Mapping[str, str], devices: Mapping[str, Mapping[str, str]],
                 o: ObservedInstance) -> dict[str, Any]:
    detail: dict[str, Any] = {k: ("(changed)" if k.startswith("environment.") else v) for k, v in config.items()}
    for dname, dev in devices.items():
        before = o.devices.get(dname) or o.expanded_devices.get(dname) or {}
        for k, v in dev.items():
            if before.get(k) != v:
                detail[f"{dname}.{k}"] = v
        for k in set(before) - set(dev):
            detail[f"{dname}.{k}"] = ""
    return detail


def _instance_deps(d: DesiredInstance, pre: list[Op]) -> tuple[str, ...]:
    """The targets of earlier ops this instance needs: its profiles, networks and image."""
    names = {op.target for op in pre}
    nets = {str(dev.get("network")) for dev in d.devices.values() if dev.get("network")}
    deps = [p for p in d.profiles if p in names] + sorted(n for n in nets if n in names)
    if d.image in names:
        deps.append(d.image)
    return tuple(deps)


def _plan_instance(d: DesiredInstance, observed: Observed, pre: list[Op]) -> list[Op]:
    o = observed.instances.get(d.name)
    deps = _instance_deps(d, pre)
    after_start = [Op(OpKind.WAIT_IPV4, d.name, {"timeout": d.timeout, **({"ipv4": d.ipv4} if d.ipv4 else {})})
                   ] if d.wait_ipv4 and d.running else []
    if o is None:
        create = Op(OpKind.CREATE, d.name, _create_detail(d), after=deps, payload=d)
        return [create] + ([Op(OpKind.START, d.name), *after_start] if d.running else [])
    config: dict[str, str]
    devices: dict[str, dict[str, str]]
    if d.member and o.location not in ("", "none", d.member):  # on the wrong cluster member
        reason, config, devices = f"member changed ({o.location} -> {d.member})", {}, {}
    elif o.config.get(HASH_KEY) == d.config_hash() and observed.images.get(d.image) in (None, o.base_image):
        reason, config, devices = "", {}, {}
    else:
        reason, config, devices = instance_changes(d, o, observed.images)
    ops: list[Op] = []
    if reason:
        ops.append(Op(OpKind.RECREATE, d.name, _create_detail(d), reason=reason, after=deps, payload=d))
        return ops + ([Op(OpKind.START, d.name), *after_start] if d.running else [])
    if config or devices or o.config.get(HASH_KEY) not in (None, d.config_hash()):
        payload = {"config": {**config, HASH_KEY: d.config_hash()}, "devices": devices}
        ops.append(Op(OpKind.UPDATE_LIVE, d.name, _live_detail(config, devices, o) or {"hash": d.config_hash()},
                      after=deps, payload=payload))
    if d.running and not o.running:
        ops += [Op(OpKind.START, d.name), *after_start]
    elif not d.running and o.running:
        ops.append(Op(OpKind.STOP, d.name))
    return ops or [Op(OpKind.NOOP, d.name, reason="up to date")]


def _create_detail(d: DesiredInstance) -> dict[str, Any]:
    limits = {k: v for k, v in d.config.items() if k.startswith("limits.")}
    placed = {"member": d.member} if d.member else {}
    return {"image": d.image, "profiles": ",".join(d.profiles), **limits, **placed}


# -- networks, profiles, volumes ----------------------------------------------------------------
def _plan_network(n: DesiredNetwork, observed: Observed) -> list[Op]:
    have = observed.networks.get(n.name)
    ops: list[Op] = []
    if have is None:
        ops.append(Op(OpKind.ENSURE_NETWORK, n.name, {"subnet": n.config.get("ipv4.address", "")},
                      reason=MISSING, payload=n))
    elif any((have.get("config") or {}).get(k) != v for k, v in n.config.items()):
        changed = sorted(k for k, v in n.config.items() if (have.get("config") or {}).get(k) != v)
        ops.append(Op(OpKind.ENSURE_NETWORK, n.name, {"keys": changed}, reason="config differs", payload=n))
    if n.config.get(ISOLATED_KEY) == "true" and (have is None or n.name in observed.isolation_missing):
        ops.append(Op(OpKind.ENSURE_ISOLATION, n.name, after=(n.name,) if have is None else ()))
    return ops


def _plan_profile(p: DesiredProfile, observed: Observed) -> list[Op]:
    have = observed.profiles.get(p.name)
    if have is not None and p.matches(have):
        return []
    if have is not None and p.content_named:  # edited by hand: rewriting it would change its users' limits
        raise PreflightError(f"--profile: LXD profile {p.name} no longer has the content its name stands for "
                             "(changed outside lxctool); nothing changed; lxctool does not rewrite it under "
                             f"the containers using it: `lxc profile delete {p.name}` once none does")
    return [Op(OpKind.ENSURE_PROFILE, p.name, reason=MISSING if have is None else "differs", payload=p)]


def _plan_volume(v: DesiredVolume, observed: Observed) -> list[Op]:
    have = observed.volumes.get((v.pool, v.name))
    if have is not None and all((have.get("config") or {}).get(k) == val for k, val in v.config.items()):
        return []
    return [Op(OpKind.ENSURE_VOLUME, v.name, {"pool": v.pool, **v.config},
               reason=MISSING if have is None else "config differs", payload=v)]


def _uses_hook(config: Mapping[str, str], hook_path: str) -> bool:
    return hook_path in config.get("raw.lxc", "")


def plan(desired: Desired, observed: Observed, *,
         prune: Callable[[ObservedInstance], bool] | None = None,
         prune_networks: Callable[[Mapping[str, Any]], bool] | None = None,
         prune_profiles: Callable[[Mapping[str, Any]], bool] | None = None, force: bool = False) -> list[Op]:
    """The ops that take observed to desired, in an order that works one by one.

    Missing -> create (+start, +wait-ipv4); same hash -> noop (start when stopped); only live
    keys differ -> update-live; anything else -> recreate with the reason; not desired and
    prune(observed) -> delete. Ops carry `after` (targets first) for the parallel executor.
    An op that changes an object lxctool did not create is refused unless force (core/ownership.py).
    """
    pre: list[Op] = []
    if not observed.hook_installed and (
            any(_uses_hook(i.config, observed.hook_path) for i in desired.instances)
            or any(_uses_hook(p.config, observed.hook_path) for p in desired.profiles)):
        pre.append(Op(OpKind.INSTALL_HOOK, observed.hook_path, reason="net-out shaping hook missing or outdated"))
    pre += [Op(OpKind.BUILD_IMAGE, image) for image in desired.images]
    for n in desired.networks:
        pre += _plan_network(n, observed)
    wanted_nets = {n.name for n in desired.networks}
    attached = sorted({str(dev["network"]) for i in desired.instances for dev in i.devices.values()
                       if dev.get("network")} - wanted_nets)
    pre += [Op(OpKind.ENSURE_ISOLATION, n) for n in attached if n in observed.isolation_missing]
    hook = tuple(op.target for op in pre if op.kind == OpKind.INSTALL_HOOK)
    for p in desired.profiles:
        pre += [Op(o.kind, o.target, o.detail, o.reason, hook if _uses_hook(p.config, observed.hook_path) else (),
                   o.payload) for o in _plan_profile(p, observed)]
    for v in desired.volumes:
        pre += _plan_volume(v, observed)
    ops = list(pre)
    for d in desired.instances:
        inst_ops = _plan_instance(d, observed, pre)
        if hook and _uses_hook(d.config, observed.hook_path) and inst_ops[0].kind != OpKind.NOOP:
            first = inst_ops[0]
            inst_ops[0] = Op(first.kind, first.target, first.detail, first.reason, first.after + hook, first.payload)
        ops += inst_ops
    if prune is not None:
        keep = {d.name for d in desired.instances}
        ops += [Op(OpKind.DELETE, name, reason="not desired") for name, o in sorted(observed.instances.items())
                if name not in keep and prune(o)]
    gone = tuple(op.target for op in ops if op.kind == OpKind.DELETE)  # their users go first
    if prune_profiles is not None:
        keep = {p.name for p in desired.profiles}
        ops += [Op(OpKind.DELETE_PROFILE, name, reason="not desired", after=gone)
                for name, rec in sorted(observed.profiles.items()) if name not in keep and prune_profiles(rec)]
    if prune_networks is not None:
        keep = {n.name for n in desired.networks}
        ops += [Op(OpKind.DELETE_NETWORK, name, reason="not desired", after=gone)
                for name, rec in sorted(observed.networks.items()) if name not in keep and prune_networks(rec)]
    return refuse_foreign(ops, observed, force)


def plan_state(observed: Observed, names: list[str], action: str, force: bool = False) -> list[Op]:
    """start / stop / restart each named container (already in that state: a noop saying so).

    force: stop/restart without waiting for a clean shutdown, and act on containers lxctool did
    not create (without it those are refused, also when they are already in the asked state).
    """
    ops = []
    detail = {"force": True} if force else {}
    for name in names:
        running = observed.instances[name].running
        if action == "start" and running or action == "stop" and not running:
            ops.append(Op(OpKind.NOOP, name, reason=f"already {'running' if running else 'stopped'}"))
        elif action == "restart" and not running:
            ops.append(Op(OpKind.START, name))
        else:
            ops.append(Op(OpKind(action), name, detail))
    # a noop is refused too: whether a command is allowed must not depend on the container's state
    refuse_foreign([Op(OpKind(action), name) for name in names], observed, force)
    return ops


def _nics_on(o: ObservedInstance, network: str) -> list[str]:
    return sorted(d for d, dev in o.expanded_devices.items() if dev.get("type") == "nic" and dev.get("network") == network)


def plan_network_delete(observed: Observed, name: str, force: bool = False) -> list[Op]:
    """Detach each container on network `name` (remove its NICs there), then delete the network.

    Without force: refused when the network or a container on it is not lxctool's, or while a
    container uses it. A NIC a profile gives is masked with a `none` device of the same name, so
    the container loses it rather than falling back to the profile's NIC on another network.
    """
    users = sorted(n for n, o in observed.instances.items() if _nics_on(o, name))
    ops: list[Op] = []
    for user in users:
        o = observed.instances[user]
        nics = _nics_on(o, name)
        devices = {d: dict(v) for d, v in o.devices.items() if d not in nics}
        for d in nics:
            if any(d in ((observed.profiles.get(p) or {}).get("devices") or {}) or p not in observed.profiles
                   for p in o.profiles):
                devices[d] = {"type": "none"}
        ops.append(Op(OpKind.DETACH_NIC, user, {"network": name, "nics": nics}, payload=devices))
    ops.append(Op(OpKind.DELETE_NETWORK, name, after=tuple(users)))
    if not force:
        lines = foreign_lines(ops, observed)
        if users:
            lines.append(f"NAME: {name} is used by {', '.join(users)}; nothing changed; delete or move them, "
                         f"or add --force to detach them (their NICs on {name} are removed)")
        if lines:
            raise NeedsForce(lines)
    return ops
