"""The console script's entry: signal handlers first, then everything else.

Importing click and the commands takes 0.1-0.4 s; a Ctrl-C or SIGTERM in that time used to end in
a KeyboardInterrupt traceback or a kill without a message. Nothing has been created before the
command runs, so a signal during start-up simply exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import signal
import sys
from typing import Any


class _Startup(BaseException):
    """A signal before the command started."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _early(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Startup(143 if signum == signal.SIGTERM else 130)


def main() -> None:
    """Install start-up signal handling, import the CLI, run it (it installs its own handlers)."""
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    try:
        from lxctool.cli import main as cli_main  # lazy: after the start-up handlers are in place
    except _Startup as exc:
        sys.stderr.write("lxctool: interrupted\n")
        sys.exit(exc.code)
    try:
        cli_main()
    except _Startup as exc:  # arrived between the import and cli.main's own handlers
        sys.stderr.write("lxctool: interrupted\n")
        sys.exit(exc.code)
