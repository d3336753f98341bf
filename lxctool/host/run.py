"""The one door to host processes: every command lxctool starts on the host goes through here.

Argument lists only, never a shell string, so no value is ever re-parsed by a shell. A failed
command becomes a HostCommandError naming the command and the last line it wrote on stderr
(not a traceback); a missing tool or a timeout says so in the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import IO, Mapping, Sequence

from lxctool.core.errors import HostCommandError


class ToolMissing(HostCommandError):
    """The command is not installed on the host."""


class ToolTimeout(HostCommandError):
    """The command ran longer than its timeout and was stopped."""


@dataclass(frozen=True)
class Completed:
    """A finished host command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether it exited 0."""
        return self.returncode == 0


def which(tool: str) -> str | None:
    """The full path of tool on PATH, or None when it is not installed."""
    return shutil.which(tool)


def last_line(text: str) -> str:
    """The last non-empty line of a command's output (what a user needs to see of it)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _failure(argv: tuple[str, ...], returncode: int, stderr: str) -> HostCommandError:
    said = last_line(stderr)
    return HostCommandError(f"{' '.join(argv)} failed (exit {returncode})" + (f": {said}" if said else ""),
                            argv=argv, returncode=returncode, stderr=stderr)


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float | None = None, env: Mapping[str, str] | None = None,
        merge_stderr: bool = False) -> Completed:
    """Run argv to completion and capture its output (text); HostCommandError when check and it fails.

    env adds to (never replaces) this process's environment; merge_stderr folds stderr into stdout
    in the order written (build logs). A missing tool or a timeout raises even without check.
    """
    args = tuple(str(a) for a in argv)
    if not args:
        raise ValueError("run: empty argv")
    try:
        proc = subprocess.run(args, input=input, capture_output=not merge_stderr,
                              stdout=subprocess.PIPE if merge_stderr else None,
                              stderr=subprocess.STDOUT if merge_stderr else None,
                              text=True, errors="replace", timeout=timeout,
                              env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise ToolMissing(f"{args[0]} is not installed on the host", argv=args) from None
    except subprocess.TimeoutExpired:
        raise ToolTimeout(f"{' '.join(args)} still running after {timeout:g}s; stopped it",
                               argv=args) from None
    done = Completed(args, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and not done.ok:
        raise _failure(args, done.returncode, done.stderr or done.stdout)
    return done


def succeeds(argv: Sequence[str], *, timeout: float | None = None) -> bool:
    """Whether argv runs and exits 0 (a missing tool counts as failure)."""
    try:
        return run(argv, check=False, timeout=timeout).ok
    except HostCommandError:
        return False


def start(argv: Sequence[str], *, stdin: int | IO[bytes] | None = subprocess.DEVNULL,
          stdout: int | IO[bytes] | None = subprocess.DEVNULL,
          stderr: int | IO[bytes] | None = subprocess.DEVNULL,
          env: Mapping[str, str] | None = None, new_session: bool = False) -> "subprocess.Popen[bytes]":
    """Start argv in the background; the caller waits for or ends the returned process (by its pid).

    new_session: the child leads its own session, so a Ctrl-C on this terminal does not reach it.
    """
    args = tuple(str(a) for a in argv)
    try:
        return subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr, close_fds=True,
                                start_new_session=new_session, env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise ToolMissing(f"{args[0]} is not installed on the host", argv=args) from None


PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
