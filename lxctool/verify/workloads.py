"""Workloads that push a container past a limit: busybox shell scripts, started in the background
in their own session so the host can end every process they made by one process-group id.

The host, not the container, ends a workload: a workload that exhausted limits.processes leaves no
room for LXD to exec `kill` inside (LXD's exec itself needs a free pid).
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

from lxctool.host.cgroups import CgroupReader
from lxctool.core.errors import LxdError
from lxctool.lxd.client import Lxd, wait_until

SCRATCH = "/.lxctool-verify"   # on the root disk (not /tmp, which may be a tmpfs)


def cpu_burn(threads: int) -> str:
    """Busy loops, one per thread, until killed."""
    return f"trap wait EXIT; for i in $(seq {threads}); do (while :; do :; done) & done; wait"


def fork_until_refused(cap: int) -> str:
    """Start sleepers until fork fails (or cap is reached); the shell then waits, holding the count.

    busybox ash exits on a failed fork; its EXIT trap runs `wait` (a builtin, no fork needed), so
    the shell and its sleepers stay until the host ends the group.
    """
    # the pause lets LXD's exec helper leave first: counted while it lives, it would take a pid
    return (f"usleep 500000; trap wait EXIT; i=0; while [ $i -lt {cap} ]; do sleep 120 & i=$((i+1)); done")


def allocate(nbytes: int) -> str:
    """Allocate and touch nbytes of anonymous memory in one process (dd's block buffer)."""
    return f"dd if=/dev/zero of=/dev/null bs={nbytes} count=1 2>/dev/null"


def direct_write(path: str, block: int, count: int) -> list[str]:
    """argv: write count blocks with O_DIRECT (buffered writeback escapes the v1 blkio throttle)."""
    return ["dd", "if=/dev/zero", f"of={path}", f"bs={block}", f"count={count}", "oflag=direct"]


def direct_read(path: str, block: int) -> list[str]:
    """argv: read a file back with O_DIRECT (never from the page cache)."""
    return ["dd", f"if={path}", "of=/dev/null", f"bs={block}", "iflag=direct"]


def host_pid_of(reader: CgroupReader, name: str, project: str | None, inner_pid: int) -> int | None:
    """The host PID of the container's process inner_pid (via /proc/PID/status NSpid)."""
    for pid in reader.read(name, project).tasks:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) >= 2 and int(ids[-1]) == inner_pid:
                        return pid
        except OSError:
            continue
    return None


class Background:
    """A workload running in its own session inside a container; stop() ends all it started."""

    def __init__(self, lxd: Lxd, name: str, script: str, reader: CgroupReader | None = None) -> None:
        self.lxd, self.name, self.script = lxd, name, script
        self.reader = reader or CgroupReader()
        self.pgid: int | None = None

    def start(self) -> "Background":
        """Start the script; remember its process group as the host sees it.

        Not cut by a signal between the exec and learning the group (it would run on unstopped)."""
        from lxctool.host.signals import deferred  # lazy: only this path needs it

        try:
            with deferred():
                return self._start()
        except BaseException:  # the signal held during the start: `with` will not call __exit__
            self.stop()
            raise

    def _start(self) -> "Background":
        from lxctool.host import owner  # lazy: only this path needs it

        res = self.lxd.exec(self.name, ["sh", "-c", f"setsid sh -c {shlex.quote(self.script)} "
                                                    "</dev/null >/dev/null 2>&1 & echo $!"],
                            env={owner.ENV_KEY: owner.token()})  # `lxctool gc` finds it after kill -9
        inner = res.stdout.strip()
        if res.exit_code != 0 or not inner.isdigit():
            raise LxdError(f"{self.name}: could not start a workload: {res.stderr.strip() or res.stdout.strip()}")
        found = wait_until(lambda: host_pid_of(self.reader, self.name, self.lxd.project, int(inner)), 2, 0.01)
        # not found: it ended already (e.g. killed at once): nothing left to stop
        self.pgid = found if found is not None else -1
        return self

    def stop(self) -> None:
        """SIGKILL the workload's whole process group, then wait until its tasks are gone."""
        from lxctool.host.signals import deferred  # lazy: only this path needs it

        with deferred():  # not cut short by a signal: delivered once the workload is gone
            self._stop()

    def _stop(self) -> None:
        if self.pgid is None or self.pgid <= 0:
            return
        members = [p for p in self.reader.read(self.name, self.lxd.project).tasks if _pgid(p) == self.pgid]
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # gone means reaped too: a zombie still shows in the container's `ps` until init waits for it
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in members), 5, 0.02)
        self.pgid = None

    def __enter__(self) -> "Background":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
