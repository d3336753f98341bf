"""One handler per OpKind: the only place where an op turns into LXD calls and host changes.

A handler gets the executor's context (ctx.lxd, ctx.on_failure, ctx.settled) and the op, and
returns a result the caller may use (the instance record after start, the state after wait).
"""

from __future__ import annotations

from typing import Any, Callable

from lxctool.apply.waits import READINESS_CONFIG_KEY, READY_TIMEOUT, wait_for_cpuset, wait_for_ipv4, wait_for_readiness
from lxctool.core.errors import LxdError
from lxctool.core.plan import MISSING, DesiredInstance, Op, OpKind
from lxctool.host import firewall
from lxctool.host.cgroups import lxc_name
from lxctool.lxd.client import ApiError
from lxctool.lxd.views import Instance
from lxctool.net.attach import configure_extra_nics
from lxctool.report.progress import progress


def _build_image(ctx: Any, op: Op) -> Any:
    from lxctool.images.build import build  # lazy: the image builder costs ~40 ms; most launches build nothing

    return build(ctx.lxd, op.target)


def _install_hook(ctx: Any, op: Op) -> str:
    from lxctool.host import shaping  # lazy: ~8 ms (tc, desired); only host-side egress needs it

    return shaping.ensure_hook_script()


def _ensure_isolation(ctx: Any, op: Op) -> bool:
    changed = firewall.ensure_isolation(op.target)
    if changed and op.target not in ctx.created:
        progress(f"put back the missing isolation rule of {op.target}")
    return changed


def _ensure_network(ctx: Any, op: Op) -> None:
    net = op.payload
    lxd = ctx.lxd
    if op.reason != MISSING:
        lxd.patch_network(net.name, dict(net.config))
        return
    try:
        lxd.create_network(net.name, dict(net.config), net.description)
    except ApiError as exc:
        raise LxdError(f"LXD refused to create {net.name}: {exc.lxd_message}") from None
    ctx.on_failure(net.name, lambda exc: lxd.delete_network(net.name))  # no bridge without its rule


def _ensure_profile(ctx: Any, op: Op) -> None:
    prof = op.payload
    try:
        ctx.lxd.put_profile(prof.name, dict(prof.config), {d: dict(v) for d, v in prof.devices.items()},
                            prof.description)
    except ApiError as exc:
        # parallel launches of one new profile file all create it: one wins, the others find the
        # same content there (a file profile's name is its content hash), which is what they wanted
        have = ctx.lxd.profile(prof.name) if op.reason == MISSING else None
        if have is None or not prof.matches(have):
            raise LxdError(f"LXD refused profile {prof.name}: {exc.lxd_message}") from None


def _ensure_volume(ctx: Any, op: Op) -> None:
    vol = op.payload
    if op.reason == MISSING:
        ctx.lxd.create_volume(vol.pool, vol.name, dict(vol.config))
    else:
        ctx.lxd.update_volume(vol.pool, vol.name, dict(vol.config))


def _remove_half_created(lxd: Any, name: str, exc: BaseException) -> None:
    try:
        if not lxd.remove_instance(name):  # fresh connection; waits for LXD's own stop after a failed start
            raise LxdError("LXD still has it after 60s")
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"could not start ({exc})"
        progress(f"{name}: {why}; removed the container this run had created")
    except LxdError as cleanup_exc:
        progress(f"{name} could not start and could not be removed ({cleanup_exc}); "
                 f"`lxctool delete --force {name}` removes it")


def _create(ctx: Any, op: Op) -> None:
    d: DesiredInstance = op.payload
    lxd = ctx.lxd
    progress(f"creating {d.name} from {d.image}")
    lxd.create_instance(d.body())
    ctx.on_failure(d.name, lambda exc: _remove_half_created(lxd, d.name, exc))


def stop_and_delete(lxd: Any, name: str) -> None:
    """Stop (forcibly) and delete a container; a missing one is fine."""
    inst = lxd.instance(name)
    if inst is None:
        return
    if inst.get("status") != "Stopped":
        lxd.set_state(name, "stop", force=True)
    lxd.delete_instance(name)


def _recreate(ctx: Any, op: Op) -> None:
    progress(f"recreating {op.target}: {op.reason}")
    stop_and_delete(ctx.lxd, op.target)
    _create(ctx, op)


def _update_live(ctx: Any, op: Op) -> None:
    lxd = ctx.lxd
    patch: dict[str, Any] = {"config": dict(op.payload["config"])}
    if op.payload["devices"]:
        inst = lxd.instance(op.target) or {}  # LXD replaces the devices map whole
        patch["devices"] = {**(inst.get("devices") or {}), **op.payload["devices"]}
    try:
        lxd.patch_instance(op.target, patch)
    except ApiError as exc:
        raise LxdError(f"{op.target}: LXD refused the change: {exc.lxd_message}") from None
    from lxctool.host import shaping  # lazy: ~8 ms (tc, desired); only host-side egress needs it

    shaping.sync(lxd, op.target)  # host-side egress shaping; LXD resets the veth's ingress qdisc


def _start(ctx: Any, op: Op) -> dict[str, Any]:
    lxd = ctx.lxd
    lxd.set_state(op.target, "start")
    ctx.settled(op.target)  # running now: a timeout below leaves it, and says so
    inst = lxd.instance(op.target) or {}
    wait_for_cpuset(lxd, op.target, Instance(inst).expanded_config.get("limits.cpu"))
    return inst


def _state(action: str) -> Callable[[Any, Op], None]:
    def handler(ctx: Any, op: Op) -> None:
        ctx.lxd.set_state(op.target, action, force=bool(op.detail.get("force")))
    return handler


def _delete(ctx: Any, op: Op) -> str:
    from lxctool.host import shaping  # lazy: ~8 ms (tc, desired); only host-side egress needs it

    stop_and_delete(ctx.lxd, op.target)
    if ctx.lxd.is_local:  # a remote container's IFB (if any) is on the remote host
        shaping.clear(lxc_name(op.target, ctx.lxd.project), None)  # its IFB device
    return op.target


def _delete_network(ctx: Any, op: Op) -> None:
    ctx.lxd.delete_network(op.target)
    if ctx.lxd.is_local:  # never touch this machine's rules for a remote's bridge of the same name
        firewall.remove_isolation(op.target)


def _detach_nic(ctx: Any, op: Op) -> None:
    """Remove the container's NICs on a network (payload: its local devices without them)."""
    lxd = ctx.lxd
    lxd.put_instance(op.target, lxd.require_instance(op.target), dict(op.payload))
    progress(f"detached {op.target} from {op.detail['network']}: removed its NIC {', '.join(op.detail['nics'])}")


def _delete_profile(ctx: Any, op: Op) -> None:
    ctx.lxd.delete_profile(op.target)


def _noop(ctx: Any, op: Op) -> None:
    return None


def _wait_ipv4(ctx: Any, op: Op) -> dict[str, Any]:
    lxd, name = ctx.lxd, op.target
    timeout = float(op.detail.get("timeout", 60))
    inst = ctx.results.get(name) or lxd.instance(name) or {}
    state: dict[str, Any] | None = wait_for_ipv4(lxd, name, op.detail.get("ipv4"), timeout)
    if configure_extra_nics(lxd, name, inst.get("devices") or {}):
        state = None  # more addresses now: read the state again
    if (inst.get("config") or {}).get(READINESS_CONFIG_KEY):
        wait_for_readiness(lxd, name, max(timeout, READY_TIMEOUT), inst)
        state = None
    return {"instance": inst, "state": state}


HANDLERS: dict[OpKind, Callable[[Any, Op], Any]] = {
    OpKind.BUILD_IMAGE: _build_image, OpKind.INSTALL_HOOK: _install_hook,
    OpKind.ENSURE_ISOLATION: _ensure_isolation, OpKind.ENSURE_NETWORK: _ensure_network,
    OpKind.ENSURE_PROFILE: _ensure_profile, OpKind.ENSURE_VOLUME: _ensure_volume,
    OpKind.CREATE: _create, OpKind.UPDATE_LIVE: _update_live, OpKind.RECREATE: _recreate,
    OpKind.START: _start, OpKind.STOP: _state("stop"), OpKind.RESTART: _state("restart"),
    OpKind.DELETE: _delete, OpKind.DELETE_NETWORK: _delete_network, OpKind.DELETE_PROFILE: _delete_profile,
    OpKind.NOOP: _noop, OpKind.WAIT_IPV4: _wait_ipv4, OpKind.DETACH_NIC: _detach_nic,
}
