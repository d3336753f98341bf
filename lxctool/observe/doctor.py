"""`doctor`: what this host can and cannot enforce, and whether lxctool's resources are in place."""

from __future__ import annotations

from typing import Any

from lxctool.core.errors import DaemonUnreachable
from lxctool.core.names import BASE_PROFILE
from lxctool.host import firewall
from lxctool.host.caps import HostCapabilities, pool_enforces_quota
from lxctool.lxd.client import Lxd
from lxctool.lxd.remote import warn_host_only
from lxctool.lxd.views import Network

POOL, BRIDGE, IMAGE = "lxctool", "lxctool0", "busybox"
SETUP = "run scripts/setup-host.sh"


def _row(check: str, ok: bool | None, detail: str, fix: str = "", needed: bool = True) -> dict[str, Any]:
    status = "ok" if ok else ("missing" if needed else "limited")
    return {"check": check, "status": status, "detail": detail, "fix": "" if ok else fix, "needed": needed}


def run_checks(lxd: Lxd, caps: HostCapabilities) -> list[dict[str, Any]]:
    """Every check as a row: check, status (ok | missing | limited), detail, fix."""
    rows = []
    try:
        server = lxd.server()
        env = server.get("environment") or {}
        rows.append(_row("lxd daemon", True, f"LXD {env.get('server_version')} on {lxd.where}, "
                                             f"driver {env.get('driver')}"))
    except DaemonUnreachable as exc:
        rows.append(_row("lxd daemon", False, exc.message, exc.hint or SETUP))
        server = None
    if not lxd.is_local:  # what only the remote machine itself can show is not checked from here
        return rows + _remote_rows(lxd, caps) if server is not None else rows
    rows.append(_row("cgroup layout", True, {"hybrid": "hybrid: LXD uses the v1 controllers",
                                             "v1": "v1 controllers", "v2": "v2 unified"}[caps.cgroup_layout]))
    rows.append(_row("cpus", True, f"{caps.cpus} CPUs for limits.cpu"))
    rows.append(_row("swap accounting", caps.swap_accounting,
                     "memory cgroup accounts swap" if caps.swap_accounting else "no per-cgroup swap accounting",
                     "boot with swapaccount=1 (cgroup v1)", needed=False))
    rows.append(_row("host swap", caps.swap_bytes > 0, f"{caps.swap_bytes} B of swap",
                     "add swap to see --swap matter (containers cannot swap without it)", needed=False))
    fallback = ("lxctool shapes --net-out on the host with an ifb device instead" if caps.ifb
                else "--net-out is refused (no ifb either)")
    rows.append(_row("tc police action", caps.tc_police,
                     "present: LXD can apply limits.egress" if caps.tc_police
                     else f"missing (CONFIG_NET_ACT_POLICE): LXD cannot apply limits.egress; {fallback}",
                     "a kernel with CONFIG_NET_ACT_POLICE", needed=False))
    rows.append(_row("ifb devices", caps.ifb, "ifb available for host-side shaping" if caps.ifb else "no ifb",
                     "a kernel with CONFIG_IFB", needed=False))
    if server is None:
        return rows
    pool = lxd.storage_pool(POOL)
    if pool is None:
        rows.append(_row("storage pool", False, f"no pool {POOL!r}", SETUP))
    else:
        quota = pool_enforces_quota(pool["driver"])
        rows.append(_row("storage pool", True, f"{POOL}: {pool['driver']}"))
        rows.append(_row("disk quotas", quota, f"{pool['driver']} " + ("enforces" if quota else "ignores")
                         + " a root disk size", "recreate the pool on btrfs (scripts/setup-host.sh does "
                         "where the kernel has btrfs)", needed=False))
    net = lxd.network(BRIDGE)
    if net is None:
        rows.append(_row("bridge", False, f"no network {BRIDGE!r}", SETUP))
    else:
        cfg = Network(net).config
        safe = cfg.get("ipv4.nat") == "false" and cfg.get("ipv6.address") in ("none", None, "")
        rows.append(_row("bridge", safe, f"{BRIDGE} {cfg.get('ipv4.address')} nat={cfg.get('ipv4.nat')} "
                         f"ipv6={cfg.get('ipv6.address')}", f"lxc network set {BRIDGE} ipv4.nat=false "
                         "ipv6.address=none"))
        present = firewall.isolation_rule_present(BRIDGE)
        rows.append(_row("isolation rule", present,
                         f"FORWARD drops traffic leaving {BRIDGE}" if present else f"no drop rule for {BRIDGE}",
                         SETUP))
    prof = lxd.profile(BASE_PROFILE)
    rows.append(_row("profile", prof is not None, f"{BASE_PROFILE}: root on {POOL}, eth0 on {BRIDGE}"
                     if prof else f"no profile {BASE_PROFILE!r}", SETUP))
    img = lxd.image_alias(IMAGE)
    rows.append(_row("default image", img is not None, f"{IMAGE} -> {img['target'][:12]}" if img
                     else f"no image {IMAGE!r}", "lxctool image build busybox"))
    rows.append(_hook_row())
    return rows


def _hook_row() -> dict[str, Any]:
    """The net-out start-host hook: root runs it at every start of a shaped container, so a hook
    that differs from what this lxctool writes is reported (not needed until --net-out is used)."""
    from lxctool.host import shaping  # lazy: only doctor reads the hook; keeps this module light

    problem = shaping.hook_problem()
    if problem is not None and not shaping.HOOK_PATH.exists():
        return _row("net-out hook", True, f"{shaping.HOOK_PATH} not installed yet (written by the first "
                    "--net-out launch on this host)")
    fix = f"see who changed it, then `rm {shaping.HOOK_PATH}`: the next `launch --net-out` writes it again"
    return _row("net-out hook", problem is None, problem or f"{shaping.HOOK_PATH} intact (755 root)", fix)


def _remote_rows(lxd: Lxd, caps: Any) -> list[dict[str, Any]]:
    """A remote: what its API shows; the host-only checks are named as skipped."""
    warn_host_only(lxd, "the cgroup layout, tc police action, ifb devices and isolation rules")
    rows = [_row("cpus", True, f"{caps.cpus} CPUs (api: /1.0/resources)"),
            _row("tc police action", None, "unknown on a remote: --net-out is asked of LXD, and refused "
                 "(exit 2) when the remote's kernel lacks it", needed=False)]
    pool = lxd.storage_pool(POOL)
    rows.append(_row("storage pool", pool is not None, f"{POOL}: {pool['driver']}" if pool else f"no pool {POOL!r}",
                     "create it on the remote"))
    net = lxd.network(BRIDGE)
    rows.append(_row("bridge", net is not None, f"{BRIDGE} exists" if net else f"no network {BRIDGE!r}",
                     "create it on the remote (the network must already exist there)"))
    prof = lxd.profile(BASE_PROFILE)
    rows.append(_row("profile", prof is not None, BASE_PROFILE if prof else f"no profile {BASE_PROFILE!r}",
                     "create it on the remote"))
    img = lxd.image_alias(IMAGE)
    rows.append(_row("default image", img is not None, f"{IMAGE} -> {img['target'][:12]}" if img
                     else f"no image {IMAGE!r}", "import it on the remote"))
    return rows
