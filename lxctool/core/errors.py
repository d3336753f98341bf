"""Exceptions raised by lxctool's core; cli/ maps them to exit codes (DESIGN.md table)."""

from __future__ import annotations


class LxctoolError(Exception):
    """Base of every expected failure. exit_code follows DESIGN.md."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SpecError(LxctoolError):
    """Invalid or conflicting input; refused before any change."""

    exit_code = 2

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


class PreflightError(LxctoolError):
    """A pre-flight check refused the operation before any change (name taken, unknown image...)."""

    exit_code = 2


class NeedsForce(PreflightError):
    """Refused without --force: objects lxctool did not create, a network in use (one line each)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class NotFound(PreflightError):
    """A named container, image, network or profile does not exist."""


class Unsupported(PreflightError):
    """This host cannot enforce what was asked."""


class LxdError(LxctoolError):
    """LXD refused or failed an operation."""

    exit_code = 1


class ApiError(LxdError):
    """LXD answered with an error (status and LXD's own message kept)."""

    def __init__(self, status: int, message: str, path: str) -> None:
        super().__init__(f"LXD refused {path}: {message}")
        self.status = status
        self.lxd_message = message


class DaemonUnreachable(LxdError):
    """The LXD daemon does not answer on its socket."""


class Timeout(LxctoolError):
    """Waited too long for something (an IPv4, an operation)."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that every cleanup path runs; the command exits 143."""


class CheckFailed(LxctoolError):
    """A check ran and found a difference (verify, net check, plan --check)."""

    exit_code = 3


class ExecFailed(LxctoolError):
    """`exec` could not run the command: 125 could not run it, 126 not executable, 127 not found."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class HostCommandError(LxctoolError):
    """A command lxctool ran on the host failed, is not installed, or ran too long."""

    exit_code = 1

    def __init__(self, message: str, *, argv: tuple[str, ...] = (), returncode: int | None = None,
                 stderr: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
