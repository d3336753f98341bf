"""Host-side egress shaping for hosts without the tc police action (LXD's limits.egress fails there).

Traffic leaving a container enters the host at its veth's ingress; a u32 match-all filter
redirects it to an IFB device whose tbf qdisc holds the rate. The veth is renamed at every
start (also a reboot from inside), so an LXC start-host hook (raw.lxc) runs
/var/lib/lxctool/hooks/net-out RATE at each start: it finds the new veth from the container's
network namespace (LXC_PID) and applies the same shaping again. The hook runs as root at every
start of every container that uses it, so it is self-contained: a POSIX sh script needing only
what a Debian host always has (sh, ip, tc, nsenter, sha1sum), never an lxctool install or venv
(a temporary clone's venv may be gone tomorrow). The desired rate is kept in the
user.lxctool.net-out config key so it can always be derived again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
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
LOG = "/var/log/lxctool-netshape.log"  # where the hook says what it did


def ifb_name(lxc: str) -> str:
    """The container's IFB device: stable across restarts, at most 15 characters."""
    return "lxifb" + hashlib.sha1(lxc.encode()).hexdigest()[:10]


def _run(*argv: str, check: bool = True) -> run.Completed:
    return run.run(argv, check=check)


# The hook: what apply() below does, in sh. ifb_name() is `lxifb` + sha1(LXC_NAME)[:10] in both.
HOOK_SCRIPT = r"""#!/bin/sh
# written by lxctool: re-applies host-side egress shaping (net-out) at each container start.
# Self-contained on purpose: sh, ip, tc, nsenter and sha1sum only. It never fails the start:
# at worst the container runs unshaped, and the log says why. `lxctool doctor` checks this file.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
rate=$1
lxc=$LXC_NAME
say() { echo "$(date +%Y-%m-%dT%H:%M:%S) $lxc: $*"; }
shape() {
    case "$rate" in ''|*[!0-9]*|0) say "bad rate '$rate'; egress left unshaped"; return 0;; esac
    case "$LXC_PID" in ''|*[!0-9]*) say "no LXC_PID; egress left unshaped"; return 0;; esac
    peer=$(nsenter --net=/proc/$LXC_PID/ns/net ip -o link show dev eth0 |
           sed -n 's/^[0-9]*: [^@:]*@if\([0-9]*\):.*/\1/p')
    veth=
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/ifindex" 2>/dev/null)" = "$peer" ] && veth=${dev##*/}
    done
    if [ -z "$peer" ] || [ -z "$veth" ]; then
        say "no eth0 veth found for pid $LXC_PID; egress left unshaped"; return 0
    fi
    ifb=lxifb$(printf '%s' "$lxc" | sha1sum | cut -c1-10)
    burst=$((rate / 8 / 100))
    [ "$burst" -lt 3000 ] && burst=3000
    [ -e "/sys/class/net/$ifb" ] || ip link add "$ifb" type ifb || return 0
    ip link set dev "$ifb" alias "lxctool net-out $lxc" &&
    ip link set dev "$ifb" txqueuelen 1000 up &&
    tc qdisc replace dev "$ifb" root tbf rate "${rate}bit" burst "$burst" latency 50ms || return 0
    tc qdisc del dev "$veth" ingress 2>/dev/null
    tc qdisc add dev "$veth" handle ffff: ingress &&
    tc filter add dev "$veth" parent ffff: protocol all prio 10 u32 match u32 0 0 \
        action mirred egress redirect dev "$ifb" || return 0
    say "egress $rate bit/s via $veth -> $ifb"
}
shape >>/var/log/lxctool-netshape.log 2>&1
exit 0
"""


def hook_script() -> str:
    """The start-host hook's text (the same for every lxctool install of this version)."""
    return HOOK_SCRIPT


def hook_problem(path: Path | None = None) -> str | None:
    """What is wrong with the installed hook (None when intact): missing, other text, mode or owner."""
    path = path or HOOK_PATH
    try:
        st = path.lstat()
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path} ({exc.__class__.__name__})" if path.exists() else f"{path} is missing"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if text != HOOK_SCRIPT:
        return f"{path} differs from the hook this lxctool writes (changed by hand, or by another version)"
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) != 0o755:
        return f"{path} has mode {stat.S_IMODE(st.st_mode):o} owner uid {st.st_uid}; want 755 root"
    return None


def hook_current() -> bool:
    """Whether the hook script is installed where raw.lxc points, intact (reads only)."""
    return hook_problem() is None


def ensure_hook_script() -> str:
    """Write the hook script where raw.lxc points (unchanged when already right); return its path.

    Written to a temporary file in the same folder, then renamed: a container starting meanwhile
    runs either the old hook or the new one, never half of one. Only the executor's install-hook
    op calls this: planning never writes (a dry run stays dry).
    """
    if not hook_current():
        HOOK_PATH.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".net-out.", dir=HOOK_PATH.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(HOOK_SCRIPT)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o755)
            if os.geteuid() == 0:
                os.chown(tmp, 0, 0)
            os.replace(tmp, HOOK_PATH)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return str(HOOK_PATH)


def egress_config(rate: int | None, raw_lxc: str) -> dict[str, str]:
    """Config keys that make a container's egress shaped at rate (None or 0: unshaped); writes nothing."""
    return desired.egress_config(rate, raw_lxc, str(HOOK_PATH))


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
