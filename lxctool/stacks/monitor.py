"""The stack's host-side `lxctool monitor` (the part Telegraf played in the lab): started by `up`
in the background, pidfile in RUN_DIR/stacks/NAME/monitor.pid, log in
/var/log/lxctool-monitor-NAME.log (LXCTOOL_LOG_DIR for tests), stopped by `down`."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lxctool.host import run
from lxctool.stacks import model as m
from lxctool.stacks.desired import context
from lxctool.stacks.lock import run_dir
from lxctool.stacks.state import addresses, own_instances


def pidfile(stack: str) -> Path:
    """RUN_DIR/stacks/NAME/monitor.pid."""
    return run_dir(stack) / "monitor.pid"


def logfile(stack: str) -> Path:
    """/var/log/lxctool-monitor-NAME.log."""
    return Path(os.environ.get("LXCTOOL_LOG_DIR", "/var/log")) / f"lxctool-monitor-{stack}.log"


def _alive(pid: int) -> bool:
    """Whether pid runs and is an lxctool monitor (a reused PID is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"monitor" in cmdline and any(b"lxctool" in part for part in cmdline)


def status(stack: str) -> dict[str, Any]:
    """{'pid', 'running', 'argv'} of the stack's monitor (pid None when there is none)."""
    path = pidfile(stack)
    try:
        lines = path.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return {"pid": None, "running": False, "argv": []}
    return {"pid": pid, "running": _alive(pid), "argv": lines[1:]}


def argv_for(url: str, database: str, interval: float, names: list[str]) -> list[str]:
    """The monitor command line (the installed lxctool, run by this Python)."""
    return ["monitor", "--influx-url", url, "--database", database, "--interval", f"{interval:g}", *names]


def ensure_for(lxd: Any, stack: m.Stack, records: dict[str, dict[str, Any]]) -> str:
    """Start (or restart, when dead or changed) the stack's monitor; a line saying which.

    lxd None: nothing changed, so the records observed before are current (no request).
    """
    assert stack.monitor is not None
    insts = own_instances(lxd.instances_full(), stack.name) if lxd is not None else records
    ip = context(stack, addresses(insts))["services"][stack.monitor.influxdb]["ipv4"]
    names = sorted(n for s in stack.services for n in m.instance_names(stack.name, s))
    args = argv_for(f"http://{ip}:{stack.monitor.port}", stack.monitor.database, stack.monitor.interval, names)
    return f"monitor {ensure(stack.name, args)} (log {logfile(stack.name)})"


def ensure(stack: str, args: list[str]) -> str:
    """Start the monitor unless it runs with these arguments; 'running', 'started' or 'restarted'."""
    st = status(stack)
    if st["running"] and st["argv"] == args:
        return "running"
    if st["running"]:
        stop(stack)
    log = logfile(stack)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # a new session: Ctrl-C on `up` must not stop the monitor it leaves running
        proc = run.start([sys.executable, "-c", "from lxctool.cli import main; main()", *args],
                         stdout=out, stderr=out, new_session=True)
    path = pidfile(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([str(proc.pid), *args]) + "\n")
    return "restarted" if st["pid"] else "started"


def stop(stack: str, timeout: float = 5.0) -> bool:
    """Stop the stack's monitor (SIGTERM, then SIGKILL); whether one was running."""
    st = status(stack)
    pidfile(stack).unlink(missing_ok=True)
    if not st["running"]:
        return False
    pid = int(st["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
