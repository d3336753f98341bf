"""Host-side egress shaping for hosts without the tc police action (LXD's limits.egress fails there).

Traffic leaving a container enters the host at its veth's ingress; a u32 match-all filter
redirects it to an IFB device whose tbf qdisc holds the rate. The veth is renamed at every
start (also a reboot from inside), so an LXC start-host hook (raw.lxc) runs
`python -m lxctool.host.shaping hook RATE` at each start: it finds the new veth from the
container's network namespace (LXC_PID) and applies the shaping again. The desired rate is
kept in the user.lxctool.net-out config key so it can always be derived again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lxctool.core import desired
from lxctool.core.limits import HOST_EGRESS_KEY
from lxctool.host import run, tc
from lxctool.host.cgroups import lxc_name
from lxctool.lxd.views import Instance

RATE_KEY = HOST_EGRESS_KEY
HOOK_PATH = Path(os.environ.get("LXCTOOL_HOOK_DIR", "/var/lib/lxctool/hooks")) / "net-out"
HOOK_LINE = "lxc.hook.start-host"
LOG = "/var/log/lxctool-netshape.log"


def ifb_name(lxc: str) -> str:
    """The container's IFB device: stable across restarts, at most 15 characters."""
    return "lxifb" + hashlib.sha1(lxc.encode()).hexdigest()[:10]


def _run(*argv: str, check: bool = True) -> run.Completed:
    return run.run(argv, check=check)


def hook_script() -> str:
    """The start-host hook: it never fails the start (a missing lxctool only loses the shaping)."""
    return ("#!/bin/sh\n# written by lxctool: re-applies host-side egress shaping at each container start\n"
            f"PY={sys.executable}\n"
            f'[ -x "$PY" ] && "$PY" -m lxctool.host.shaping hook "$@" >>{LOG} 2>&1\nexit 0\n')


def hook_current() -> bool:
    """Whether the hook script is installed where raw.lxc points, with today's text (reads only)."""
    try:
        return HOOK_PATH.read_text() == hook_script()
    except OSError:
        return False


def ensure_hook_script() -> str:
    """Write the hook script where raw.lxc points (unchanged when already right); return its path.

    Only the executor's install-hook op calls this: planning never writes (a dry run stays dry).
    """
    if not hook_current():
        HOOK_PATH.parent.mkdir(parents=True, exist_ok=True)
        tmp = HOOK_PATH.with_suffix(".tmp")
        tmp.write_text(hook_script())
        tmp.chmod(0o755)
        tmp.replace(HOOK_PATH)
    return str(HOOK_PATH)


def egress_config(rate: int | None, raw_lxc: str) -> dict[str, str]:
    """Config keys that make a container's egress shaped at rate (None or 0: unshaped); writes nothing."""
    return desired.egress_config(rate, raw_lxc, str(HOOK_PATH))


def veth_of_pid(pid: int, nic: str = "eth0") -> str | None:
    """The host-side veth of the container NIC, found from its network namespace."""
    proc = _run("nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-j", "link", "show", "dev", nic, check=False)
    try:
        peer = json.loads(proc.stdout)[0].get("link_index")
    except (ValueError, IndexError):
        return None
    for dev in Path("/sys/class/net").iterdir():
        try:
            if int((dev / "ifindex").read_text()) == peer:
                return dev.name
        except (OSError, ValueError):
            continue
    return None


def apply(lxc: str, veth: str, rate: int) -> str:
    """Shape traffic leaving the container (arriving on veth) to rate bits/s; return the IFB's name."""
    ifb = ifb_name(lxc)
    if not Path(f"/sys/class/net/{ifb}").exists():
        _run("ip", "link", "add", ifb, "type", "ifb")
    _run("ip", "link", "set", "dev", ifb, "alias", f"lxctool net-out {lxc}")
    _run("ip", "link", "set", "dev", ifb, "txqueuelen", "1000", "up")
    burst = max(rate // 8 // 100, 3000)  # 10 ms at the rate, at least two full frames
    _run("tc", "qdisc", "replace", "dev", ifb, "root", "tbf", "rate", f"{rate}bit", "burst", str(burst),
         "latency", "50ms")
    _run("tc", "qdisc", "del", "dev", veth, "ingress", check=False)
    _run("tc", "qdisc", "add", "dev", veth, "handle", "ffff:", "ingress")
    _run("tc", "filter", "add", "dev", veth, "parent", "ffff:", "protocol", "all", "prio", "10", "u32",
         "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb)
    return ifb


def clear(lxc: str, veth: str | None) -> None:
    """Remove the redirect on veth (if running) and the container's IFB device."""
    if veth and redirect_target(veth):
        _run("tc", "qdisc", "del", "dev", veth, "ingress", check=False)
    if Path(f"/sys/class/net/{ifb_name(lxc)}").exists():
        _run("ip", "link", "del", ifb_name(lxc), check=False)


def redirect_target(veth: str) -> str | None:
    """The device that veth's ingress filter redirects to (None when there is no redirect)."""
    return tc.redirect_target(veth)


def in_place(veth: str | None) -> dict[str, Any] | None:
    """The egress shaping really in place for a veth: redirect device, qdisc kind and rate."""
    shaped = tc.in_place(veth)
    return shaped.as_dict() if shaped else None


def split_egress(config: dict[str, str], dev_keys: dict[str, dict[str, str]], raw_lxc: str,
                 police: bool | Callable[[], bool], nic: str = "eth0") -> None:
    """Move a NIC's limits.egress to host-side shaping keys when LXD cannot police (in place).

    police may be a callable, so the (60 ms) kernel probe runs only when an egress limit is asked.
    """
    if "limits.egress" not in dev_keys.get(nic, {}):
        return
    desired.split_egress(config, dev_keys, raw_lxc, police() if callable(police) else police, str(HOOK_PATH), nic)


def sync(lxd: Any, name: str) -> dict[str, Any] | None:
    """Make a running container's shaping match its user.lxctool.net-out key; return what is in place."""
    if not getattr(lxd, "is_local", True):  # a remote container's veth is on another machine
        return None
    inst = Instance(lxd.require_instance(name), lxd.project)
    lxc = inst.lxc_name
    rate = int(inst.expanded_config.get(RATE_KEY) or 0)
    veth = None
    if inst.running:
        veth = inst.with_state(lxd.instance_state(name)).host_veth
    if rate and veth:
        apply(lxc, veth, rate)
    elif not rate:
        clear(lxc, veth)
    return in_place(veth)


def remove_orphans(lxd: Any, dry_run: bool = False) -> list[str]:
    """Delete lxctool IFB devices whose container is gone (removed outside `lxctool delete`).

    With dry_run, only name them (`lxctool gc --dry-run`)."""
    if not getattr(lxd, "is_local", True):  # this machine's IFBs belong to its own daemon
        return []
    proc = _run("ip", "-j", "link", "show", "type", "ifb", check=False)
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError:
        return []
    ours = {ln["ifname"]: ln["ifalias"].rsplit(" ", 1)[-1] for ln in links
            if str(ln.get("ifalias", "")).startswith("lxctool net-out ")}
    if not ours:
        return []
    alive = {lxc_name(name, project) for name, project in lxd.instance_names_all_projects()}
    gone = [ifb for ifb, lxc in ours.items() if lxc not in alive]
    for ifb in [] if dry_run else gone:
        _run("ip", "link", "del", ifb, check=False)
    return gone


def hook_main(argv: list[str]) -> int:
    """Entry of the start-host hook: `hook RATE` with LXC_NAME and LXC_PID in the environment."""
    lxc, pid = os.environ.get("LXC_NAME", ""), os.environ.get("LXC_PID", "")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        rate = int(argv[0])
        veth = veth_of_pid(int(pid))
        if veth is None:
            print(f"{stamp} {lxc}: no eth0 veth found for pid {pid}; egress left unshaped", flush=True)
            return 0
        ifb = apply(lxc, veth, rate)
        print(f"{stamp} {lxc}: egress {rate} bit/s via {veth} -> {ifb}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a hook must never stop the container from starting
        print(f"{stamp} {lxc}: shaping failed: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "hook":
        sys.exit(hook_main(sys.argv[2:]))
    print("usage: python -m lxctool.host.shaping hook RATE (run by LXC as a start-host hook)", file=sys.stderr)
    sys.exit(2)
