"""Shared fixtures. Integration tests talk to the real LXD daemon that scripts/setup-host.sh
starts; each run uses its own name prefix and removes only what it created, even on failure.

With LXCTOOL_REQUIRE_DAEMON=1 (set by scripts/test.sh in CI) a missing daemon or any skipped
test fails the run instead of passing quietly.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("LXCTOOL_REQUIRE_DAEMON") == "1"
RUN_ID = secrets.token_hex(3)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


CLI_DIR = Path(__file__).resolve().parent / "cli"


def tier(item: pytest.Item) -> str:
    """The test's tier: cli (tests/cli/, CliRunner, no daemon), integration (marked so, marked
    host, or using the real daemon through the `lxd` fixture), else pure."""
    if CLI_DIR in Path(str(item.fspath)).parents:
        return "cli"
    if {"integration", "host"} & set(item.keywords) or "lxd" in getattr(item, "fixturenames", ()):
        return "integration"
    return "pure"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (`-m "pure or cli"` is the fast lane of scripts/test.sh --fast).

    Slow extras (every shipped image built and checked, ...) run only with --run-slow. They are
    deselected, not skipped, so that a run which requires every test has no skip.
    """
    for item in items:
        item.add_marker(tier(item))
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in a run that requires every test: {report.longrepr}"


def lxctool_bin() -> str:
    venv = REPO / ".venv" / "bin" / "lxctool"
    return str(venv) if venv.exists() else "lxctool"


def run_cli(*args: str, check: bool = False, timeout: float = 300, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed lxctool command as a user would; return the finished process."""
    proc = subprocess.run([lxctool_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"lxctool {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def terminate(proc: subprocess.Popen[Any]) -> None:
    """Stop a process this test started, by its PID: SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verify_findings(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """`lxctool verify --format json` output as {limit: finding}."""
    import json

    return {r["limit"]: r for r in json.loads(proc.stdout)["findings"]}


@pytest.fixture(scope="session")
def lxd() -> Any:
    """A connection to the real daemon; fails (CI) or skips (elsewhere) when it is not running."""
    from lxctool.core.errors import DaemonUnreachable
    from lxctool.lxd.client import Lxd

    client = Lxd()
    try:
        client.ping()
    except DaemonUnreachable as exc:
        if REQUIRE:
            pytest.fail(f"LXD daemon not running: {exc.message}")
        pytest.skip(f"LXD daemon not running: {exc.message}")
    return client


@pytest.fixture(autouse=True)
def default_signal_dispositions() -> Iterator[None]:
    """A CLI run in this process (CliRunner) ends by ignoring SIGINT/SIGTERM, as the real command
    does before it exits; put pytest's own dispositions back, or every process a later test starts
    would inherit the ignored signals (and outlive a SIGTERM in its teardown)."""
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture(scope="session", autouse=True)
def verify_results_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`verify` keeps its last results for the dashboard; tests keep theirs out of /var/lib/lxctool."""
    old = os.environ.get("LXCTOOL_VERIFY_DIR")
    os.environ["LXCTOOL_VERIFY_DIR"] = str(tmp_path_factory.mktemp("verify-results"))
    yield
    if old is None:
        os.environ.pop("LXCTOOL_VERIFY_DIR", None)
    else:
        os.environ["LXCTOOL_VERIFY_DIR"] = old


@pytest.fixture(scope="session")
def run_prefix() -> str:
    """A name prefix unique to this test run (valid as a container name start)."""
    return f"t{RUN_ID}"


class Containers:
    """Creates containers through the CLI and deletes exactly those at teardown."""

    def __init__(self, lxd: Any, prefix: str) -> None:
        self.lxd = lxd
        self.prefix = prefix
        self.names: list[str] = []
        self._n = 0

    def name(self, tag: str = "c") -> str:
        """A fresh unique name, registered for cleanup."""
        self._n += 1
        name = f"{self.prefix}-{tag}{self._n}"
        self.names.append(name)
        return name

    def launch(self, *args: str, tag: str = "c", name: str | None = None) -> tuple[str, Any]:
        """lxctool launch NAME ARGS...; returns (name, parsed JSON row); raises on failure."""
        import json

        name = name or self.name(tag)
        if name not in self.names:
            self.names.append(name)
        proc = run_cli("launch", name, *args, "--format", "json", check=True)
        return name, json.loads(proc.stdout)

    def cleanup(self) -> None:
        for name in reversed(self.names):
            try:
                if self.lxd.instance(name) is not None:
                    self.lxd.set_state(name, "stop", force=True) if (self.lxd.instance(name) or {}).get(
                        "status") == "Running" else None
                    self.lxd.delete_instance(name)
            except Exception as exc:  # noqa: BLE001 - cleanup must go on
                print(f"cleanup of {name} failed: {exc}", file=sys.stderr)


@pytest.fixture
def containers(lxd: Any, run_prefix: str) -> Iterator[Containers]:
    """Factory for containers that are removed after the test, also when it fails."""
    c = Containers(lxd, run_prefix)
    try:
        yield c
    finally:
        c.cleanup()


def host_snapshot(lxd: Any) -> dict[str, Any]:
    """What a refused command must not change: LXD objects, firewall rules and qdiscs."""
    def sh(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    pools = [p["name"] for p in lxd.storage_pools()]
    return {
        "instances": sorted((i["name"], i["status"], str(sorted(i["config"].items())))
                            for i in lxd.instances_full()),
        "profiles": sorted((p["name"], str(p["config"]), str(p["devices"])) for p in lxd.profiles()),
        "networks": sorted((n["name"], str(n.get("config"))) for n in lxd.networks()),
        "images": sorted((i["fingerprint"], str(i.get("aliases"))) for i in lxd.images()),
        "volumes": sorted((p, v["name"]) for p in pools for v in lxd.storage_volumes(p)),
        "iptables": sh("iptables", "-S") + sh("iptables", "-t", "nat", "-S"),
        "nft": re.sub(r"counter packets \d+ bytes \d+", "counter", sh("nft", "list", "ruleset")),
        "qdiscs": sh("tc", "qdisc", "show"),
        "links": sorted(line.split(":")[1].split("@")[0].strip() for line in sh("ip", "-o", "link").splitlines()),
        "files": lxctool_files(),
    }


def lxctool_files(roots: tuple[str, ...] = ("/var/lib/lxctool", "/run/lxctool")) -> list[tuple[str, int, int]]:
    """Every file and folder lxctool writes on the host, with its size and mtime (ns)."""
    out = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                out.append((path, st.st_size, st.st_mtime_ns))
        if os.path.exists(root):
            out.append((root, 0, os.lstat(root).st_mtime_ns))
    return sorted(out)


@pytest.fixture
def snapshot(lxd: Any) -> Callable[[], dict[str, Any]]:
    """Call to take a host snapshot."""
    return lambda: host_snapshot(lxd)
