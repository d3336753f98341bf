"""Run one planner op against LXD (the stack's handlers), and count requests by HTTP method.

Each worker thread gets its own connection (the lean client keeps one HTTP connection, which
is not shared between threads); they all count into one Counter.
"""

from __future__ import annotations

import collections
from typing import Any

from lxctool.core.errors import LxdError, Timeout
from lxctool.core.plan import Op, OpKind
from lxctool.lxd.client import ApiError, Lxd, ipv4_addresses, wait_until
from lxctool.report.progress import progress


def counting(lxd: Lxd, counter: collections.Counter[str]) -> Lxd:
    """lxd with every request also counted by method in counter (returns lxd)."""
    raw = lxd.raw

    def counted(method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        counter[method] += 1
        return raw(method, path, **kw)

    lxd.raw = counted  # type: ignore[method-assign]
    return lxd


def clone(lxd: Lxd, counter: collections.Counter[str]) -> Lxd:
    """A new connection to the same daemon and project, counting into counter."""
    return counting(Lxd(lxd.socket_path, lxd.project, lxd.timeout), counter)


def run_op(lxd: Lxd, op: Op) -> None:
    """Apply one op (what `plan` printed for it)."""
    kind = op.kind
    try:
        if kind == OpKind.NOOP:
            return
        if kind == OpKind.BUILD_IMAGE:
            from lxctool.images.build import build

            build(lxd, op.target, say=progress)
        elif kind == OpKind.ENSURE_ISOLATION:
            from lxctool.host import firewall

            firewall.ensure_isolation(op.target)
        elif kind == OpKind.ENSURE_NETWORK:
            net = op.payload
            if lxd.network(net.name) is None:
                lxd.create_network(net.name, dict(net.config), net.description)
            else:
                lxd.patch_network(net.name, dict(net.config))
        elif kind == OpKind.ENSURE_PROFILE:
            prof = op.payload
            lxd.put_profile(prof.name, dict(prof.config), {k: dict(v) for k, v in prof.devices.items()},
                            prof.description)
        elif kind == OpKind.ENSURE_VOLUME:
            ensure_volume(lxd, op.payload.pool, op.payload.name, dict(op.payload.config))
        elif kind == OpKind.CREATE:
            progress(f"creating {op.target} from {op.payload.image}")
            lxd.create_instance(op.payload.body())
        elif kind == OpKind.RECREATE:
            progress(f"recreating {op.target}: {op.reason}")
            remove_instance(lxd, op.target)
            lxd.create_instance(op.payload.body())
        elif kind == OpKind.UPDATE_LIVE:
            inst = lxd.require_instance(op.target)
            patch: dict[str, Any] = {"config": dict(op.payload["config"])}
            if op.payload["devices"]:
                patch["devices"] = {**(inst.get("devices") or {}), **op.payload["devices"]}
            lxd.patch_instance(op.target, patch)
            if any(k.startswith("user.lxctool.net-out") for k in op.payload["config"]):
                from lxctool.host import shaping

                shaping.sync(lxd, op.target)
        elif kind == OpKind.START:
            lxd.set_state(op.target, "start")
        elif kind in (OpKind.STOP, OpKind.RESTART):
            lxd.set_state(op.target, "stop" if kind == OpKind.STOP else "restart", force=True)
        elif kind == OpKind.DELETE:
            progress(f"deleting {op.target}")
            remove_instance(lxd, op.target)
        elif kind == OpKind.DELETE_NETWORK:
            from lxctool.host import firewall

            lxd.delete_network(op.target)
            firewall.remove_isolation(op.target)
        elif kind == OpKind.DELETE_PROFILE:
            lxd.delete_profile(op.target)
        elif kind == OpKind.WAIT_IPV4:
            wait_ipv4(lxd, op.target, op.detail.get("ipv4"), float(op.detail.get("timeout", 60)))
        else:
            raise LxdError(f"{op.target}: no handler for {op.kind}")
    except ApiError as exc:
        raise LxdError(f"{op.target}: LXD refused {op.kind}: {exc.lxd_message}") from None


def ensure_volume(lxd: Lxd, pool: str, name: str, config: dict[str, str]) -> None:
    """Create the custom volume, or set the config keys that differ."""
    path = f"/1.0/storage-pools/{pool}/volumes/custom"
    have = lxd.get_or_none(f"{path}/{name}")
    if have is None:
        lxd.call("POST", path, body={"name": name, "type": "custom", "content_type": "filesystem",
                                     "config": config})
    else:
        lxd.call("PATCH", f"{path}/{name}", body={"config": config})


def delete_volume(lxd: Lxd, pool: str, name: str) -> None:
    """Delete a custom volume."""
    lxd.call("DELETE", f"/1.0/storage-pools/{pool}/volumes/custom/{name}")


def remove_instance(lxd: Lxd, name: str) -> None:
    """Stop (forced) and delete a container, and its host-side shaping device."""
    inst = lxd.instance(name)
    if inst is None:
        return
    if inst.get("status") != "Stopped":
        lxd.set_state(name, "stop", force=True)
    lxd.delete_instance(name)
    from lxctool.host import shaping
    from lxctool.host.cgroups import lxc_name

    shaping.clear(lxc_name(name, lxd.project), None)


def wait_ipv4(lxd: Lxd, name: str, expected: str | None, timeout: float) -> list[str]:
    """Poll until the container has (the expected) IPv4; Timeout naming it otherwise."""
    def ready() -> list[str] | None:
        addrs = ipv4_addresses(lxd.instance_state(name))
        return addrs if addrs and (expected is None or expected in addrs) else None

    addrs = wait_until(ready, timeout, interval=0.05)
    if not addrs:
        what = f"IPv4 {expected}" if expected else "an IPv4 address"
        raise Timeout(f"{name} is running but got no {what} within {timeout:g}s")
    return list(addrs)
