"""Container lifecycle after launch (see launch.py): list, start/stop/delete, live limits."""

from __future__ import annotations

from typing import Any

from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.core.names import MANAGED_KEY
from lxctool.report.progress import progress
from lxctool.core.errors import LxdError, PreflightError, SpecError
from lxctool.host.caps import HostCapabilities, pool_enforces_quota
from lxctool.lxd.client import ApiError, Lxd, ipv4_addresses
from lxctool.core.plan import Op, plan_limits
from lxctool.core.spec import Limits, check_limits_for_host, option_label


def is_managed(inst: dict[str, Any]) -> bool:
    """Whether lxctool created this instance (its own config carries the marker)."""
    return (inst.get("config") or {}).get(MANAGED_KEY) == "true"


def with_device_limits(base: dict[str, dict[str, Any]], keys: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Full device definitions (LXD replaces devices whole) with limit keys set on top of base."""
    out = {}
    for dname, dkeys in keys.items():
        if dname not in base:
            continue
        out[dname] = {**base[dname], **dkeys}
    return out


def capability_errors(lxd: Lxd, limits: Limits, devices: dict[str, dict[str, Any]],
                       caps: HostCapabilities) -> list[str]:
    """Limits this host cannot enforce, each naming the missing feature."""
    errors = []
    if limits.net_out is not None and not caps.tc_police and not caps.ifb:
        errors.append("--net-out: this kernel has neither the tc police action (CONFIG_NET_ACT_POLICE) "
                      "LXD needs for limits.egress nor ifb devices for host-side shaping; see `lxctool doctor`")
    if limits.disk is not None:
        pool_name = (devices.get(limitmap.ROOT_DEVICE) or {}).get("pool")
        pool = lxd.storage_pool(pool_name) if pool_name else None
        driver = (pool or {}).get("driver", "unknown")
        if not pool_enforces_quota(driver):
            errors.append(f"--disk: storage pool {pool_name!r} uses the {driver} driver, which does not "
                          "enforce a root disk size; see `lxctool doctor`")
    if limits.swap and not caps.swap_accounting:
        errors.append("--swap: this kernel does not account swap per cgroup; see `lxctool doctor`")
    return errors


def row(inst: dict[str, Any], state: dict[str, Any] | None) -> dict[str, Any]:
    """One container as a data row in the shared vocabulary (DESIGN.md)."""
    config = inst.get("expanded_config") or {}
    devices = inst.get("expanded_devices") or {}
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
        if all_instances or is_managed(inst) or unreachable:
            rows.append(row(inst, inst.get("state")))
    return sorted(rows, key=lambda r: r["name"])


def change_state(lxd: Lxd, names: list[str], action: str, force: bool = False) -> list[dict[str, Any]]:
    """start / stop / restart each container; unknown names are refused before any change."""
    for name in names:
        lxd.require_instance(name)
    out = []
    for name in names:
        inst = lxd.instance(name) or {}
        running = inst.get("status") == "Running"
        if (action == "start" and running) or (action == "stop" and not running):
            progress(f"{name} is already {'running' if running else 'stopped'}")
        else:
            lxd.set_state(name, "start" if action == "restart" and not running else action, force=force)
        out.append(row(lxd.instance(name) or {}, lxd.instance_state(name)))
    return out


def delete(lxd: Lxd, names: list[str], force: bool = False) -> list[str]:
    """Delete containers; refuse ones lxctool did not create unless force (checked for all first)."""
    insts = [lxd.require_instance(n) for n in names]
    foreign = [i["name"] for i in insts if not is_managed(i)]
    if foreign and not force:
        raise PreflightError(f"NAME: {', '.join(foreign)} was not created by lxctool; "
                             "add --force to delete it anyway")
    done = []
    for inst in insts:
        if inst.get("status") != "Stopped":
            lxd.set_state(inst["name"], "stop", force=True)
        lxd.delete_instance(inst["name"])
        from lxctool.host import shaping as netshape

        if lxd.is_local:  # a remote container's IFB (if any) is on the remote host
            netshape.clear(netshape.lxc_name(inst["name"], lxd.project), None)  # its IFB device
        done.append(inst["name"])
    if done:
        from lxctool.host import shaping as netshape

        netshape.remove_orphans(lxd)  # IFBs of containers removed outside lxctool
    return done


def prepare_limits(lxd: Lxd, name: str, new: Limits, caps: HostCapabilities) -> tuple[dict[str, Any], list[Op]]:
    """Validate a live limits change; return (instance record, ops)."""
    inst = lxd.require_instance(name)
    errors = check_limits_for_host(new, caps.cpus, option_label)
    errors += capability_errors(lxd, new, inst.get("expanded_devices") or {}, caps)
    if errors:
        raise SpecError(errors)
    config, dev_keys = limitmap.limits_to_lxd(new)
    from lxctool.host import shaping as netshape

    netshape.split_egress(config, dev_keys, (inst.get("config") or {}).get("raw.lxc", ""),
                          lambda: caps.tc_police)
    if new.cpu is not None and new.cpu.quota is not None and (inst.get("config") or {}).get("limits.cpu"):
        config["limits.cpu"] = ""  # a fractional --cpu replaces a CPU count or set
    devices = with_device_limits(inst.get("expanded_devices") or {}, dev_keys)
    ops = plan_limits(name, inst.get("config") or {}, config, inst.get("devices") or {}, devices)
    return inst, ops


def apply_limits(lxd: Lxd, ops: list[Op]) -> None:
    """PATCH each op's config and devices (LXD applies them to the running container)."""
    for op in ops:
        body = op.detail["body"]
        patch: dict[str, Any] = {}
        if body["config"]:
            patch["config"] = body["config"]
        if body["devices"]:
            inst = lxd.instance(op.target) or {}
            patch["devices"] = {**(inst.get("devices") or {}), **body["devices"]}
        try:
            lxd.patch_instance(op.target, patch)
        except ApiError as exc:
            raise LxdError(f"{op.target}: LXD refused the change: {exc.lxd_message}") from None
        from lxctool.host import shaping as netshape

        netshape.sync(lxd, op.target)  # host-side egress shaping; LXD resets the veth's ingress qdisc


def require_running(lxd: Lxd, name: str) -> dict[str, Any]:
    """The instance record; PreflightError unless it is running."""
    inst = lxd.require_instance(name)
    if inst.get("status") != "Running":
        raise PreflightError(f"NAME: {name} is {inst.get('status', 'not running').lower()}; "
                             f"start it with `lxctool start {name}`")
    return inst
