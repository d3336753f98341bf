"""Who made a temporary thing: a process token that survives PID reuse.

A token is "PID:START" where START is the process's start time in clock ticks since boot
(/proc/PID/stat field 22). A PID alone could be reused by an unrelated process after lxctool
was killed with -9; the pair cannot, so `lxctool gc` never removes something a running lxctool
still uses, and always recognises what a dead one left.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_KEY = "LXCTOOL_TEMP_OWNER"  # set on processes lxctool starts inside containers (found from the host)


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and ')': fields are counted after its last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def token(pid: int | None = None) -> str:
    """This process's (or PID's) owner token."""
    pid = pid or os.getpid()
    return f"{pid}:{_start_ticks(pid) or 0}"


def alive(owner: str) -> bool:
    """Whether the process that wrote OWNER still runs (same PID, same start time)."""
    pid_text, _, start = owner.strip().partition(":")
    if not pid_text.isdigit():
        return False
    return _start_ticks(int(pid_text)) == start


def environ_owner(pid: int) -> str | None:
    """The owner token in a host process's environment, if lxctool started it."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in env.split(b"\0"):
        if item.startswith(ENV_KEY.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None
