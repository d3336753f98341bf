"""One writer per stack: an fcntl lock in RUN_DIR/stacks/NAME/lock that names its holder's PID.

The kernel drops the lock when the holder dies (even on SIGKILL), so a crashed `up` never
leaves a stale lock: the next `up` or `down` just takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from lxctool.core.errors import PreflightError


def run_dir(stack: str) -> Path:
    """RUN_DIR/stacks/NAME (LXCTOOL_RUN_DIR, default /run/lxctool)."""
    return Path(os.environ.get("LXCTOOL_RUN_DIR", "/run/lxctool")) / "stacks" / stack


@contextlib.contextmanager
def stack_lock(stack: str, command: str) -> Iterator[None]:
    """Hold the stack's lock; PreflightError naming the holder's PID when another process has it."""
    folder = run_dir(stack)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise PreflightError(f"stack {stack} is being changed by {holder}; wait for it to finish "
                                 "or stop that process") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({command})\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def forget(stack: str) -> None:
    """After `down`: remove the stack's run folder when only the (released) lock is left in it."""
    folder = run_dir(stack)
    try:
        if {p.name for p in folder.iterdir()} <= {"lock"}:
            (folder / "lock").unlink(missing_ok=True)
            folder.rmdir()
            folder.parent.rmdir()  # RUN_DIR/stacks too, when this was the last stack in it
    except OSError:
        pass  # another process has just taken it: it stays
