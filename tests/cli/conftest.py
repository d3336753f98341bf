"""The CLI tier: click's CliRunner against `lxctool.cli.cli`, no daemon, no change to the host.

Every test here runs with LXCTOOL_SOCKET pointing at a socket that does not exist, so it can
never reach (or change) the real daemon even when one runs; image build locks go to a temporary
cache folder. An autouse fixture proves that nothing under /var/lib/lxctool changed.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from lxctool.cli import cli

DEAD_SOCKET = "/nonexistent/socket"
HOST_STATE = Path("/var/lib/lxctool")


def tree_digest(root: Path) -> dict[str, str]:
    """Every path below root with its type, mode and content hash: what 'unchanged' means."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            body = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
            out[str(p)] = f"{oct(st.st_mode)} {body}"
    return out


@pytest.fixture(autouse=True)
def no_daemon_and_host_unchanged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No daemon reachable; /var/lib/lxctool byte-for-byte the same after the test."""
    monkeypatch.setenv("LXCTOOL_SOCKET", DEAD_SOCKET)
    monkeypatch.setenv("LXCTOOL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LXCTOOL_CONFIG_DIR", str(tmp_path / "config"))  # remotes: none chosen here
    for var in ("LXCTOOL_PROJECT", "LXCTOOL_FORMAT", "LXCTOOL_IMAGE", "LXCTOOL_NETWORK", "LXCTOOL_REMOTE",
                "LXD_DIR"):
        monkeypatch.delenv(var, raising=False)
    before = tree_digest(HOST_STATE)
    # verify, experiment and monitor install SIGINT/SIGTERM handlers: give pytest its own back
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    assert tree_digest(HOST_STATE) == before, "a CLI test changed /var/lib/lxctool"


@pytest.fixture
def lxctool() -> Callable[..., Result]:
    """lxctool(*argv) -> click Result, through the same exit-code mapping as the console script."""
    def run(*argv: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(argv), input=input)

    return run


def error_lines(result: Result) -> list[str]:
    """The `lxctool: error: ...` lines of a result's stderr."""
    return [ln for ln in result.stderr.splitlines() if ln.startswith("lxctool: error: ")]
