"""`monitor` against a real InfluxDB (Debian's influxd, started here on loopback ports and killed
by PID): points read back by query, a server lost and restarted, bad URLs and a dead server."""

from __future__ import annotations

import calendar
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import lxctool_bin, run_cli, terminate

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InfluxServer:
    """influxd on 127.0.0.1 with its data in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self.rpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        (root / "influxdb.conf").write_text(f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")

    def start(self) -> None:
        log = open(self.root / "influxd.log", "ab")
        self.proc = subprocess.Popen(["influxd", "-config", str(self.root / "influxdb.conf")],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/ping", timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, (self.root / "influxd.log").read_text()[-2000:]
                time.sleep(0.1)
        raise AssertionError("influxd did not answer /ping within 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None

    def query(self, db: str, q: str) -> list[list[Any]]:
        """Rows of the first series of an InfluxQL query (empty when none)."""
        params = urllib.parse.urlencode({"db": db, "q": q})
        with urllib.request.urlopen(f"{self.url}/query?{params}", timeout=5) as resp:
            doc = json.load(resp)
        series = doc["results"][0].get("series") or []
        return series[0]["values"] if series else []


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    if shutil.which("influxd") is None:
        pytest.fail("influxd is not installed: scripts/setup-host.sh installs Debian's influxdb")
    server = InfluxServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def epoch(rfc3339: str) -> float:
    """InfluxDB's '2026-01-02T03:04:05.123456789Z' as seconds since the epoch."""
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_monitor_writes_points_that_a_query_reads_back(influx: InfluxServer, containers: Any) -> None:
    name, _ = containers.launch("--cpu", "0.5", "--mem", "128MB")
    proc = run_cli("monitor", name, "--influx-url", influx.url, "--database", "lxdtest",
                   "--interval", "0.5", "--samples", "3", check=True, timeout=60)
    assert "3 samples, 6 points written, 0 failed pushes" in proc.stderr
    rows = influx.query("lxdtest", f"SELECT memory_limit_bytes, cpu_limit_cpus, processes FROM lxctool "
                                   f"WHERE \"name\" = '{name}' AND kind = 'container'")
    assert len(rows) == 3
    limit = int(Path(f"/sys/fs/cgroup/memory/lxc.payload.{name}/memory.limit_in_bytes").read_text())
    assert all(r[1] == limit and r[2] == 0.5 and r[3] >= 1 for r in rows)
    host = influx.query("lxdtest", "SELECT processes FROM lxctool WHERE kind = 'host'")
    assert len(host) == 3 and all(r[1] > 20 for r in host)


def test_monitor_survives_the_server_going_away_and_resends(influx: InfluxServer, containers: Any,
                                                            tmp_path: Path) -> None:
    name, _ = containers.launch("--mem", "64MB")
    err_path = tmp_path / "monitor.err"
    with open(err_path, "wb") as err:
        mon = subprocess.Popen([lxctool_bin(), "monitor", name, "--influx-url", influx.url, "--database", "lab",
                                "--interval", "0.5"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        count = lambda: len(influx.query("lab", f"SELECT processes FROM lxctool WHERE \"name\" = '{name}'"))  # noqa: E731
        wait_for(lambda: count() >= 2, 30, "the first points")
        influx.stop()
        stopped_at = time.time()
        wait_for(lambda: err_path.read_text().count("warning: push failed") >= 3, 30, "three failed-push warnings")
        assert mon.poll() is None, "monitor exited when the server went away"
        resumed_at = time.time()
        influx.start()
        wait_for(lambda: "answers again" in err_path.read_text(), 30, "the resume message")
        rows = influx.query("lab", f"SELECT processes FROM lxctool WHERE \"name\" = '{name}'")
        times = [epoch(r[0]) for r in rows]
        # points sampled while the server was down were kept and sent after it came back
        assert sum(stopped_at < t < resumed_at for t in times) >= 2, (stopped_at, resumed_at, times)
        before = len(rows)
        wait_for(lambda: count() >= before + 2, 30, "new points after the restart")
    finally:
        mon.send_signal(signal.SIGINT)
        code = mon.wait(timeout=15)
    text = err_path.read_text()
    assert code == 0, text
    assert "Traceback" not in text
    warnings = [line for line in text.splitlines() if "warning:" in line]
    assert all(line.startswith("lxctool: warning: push failed: InfluxDB at ") for line in warnings)
    assert "stopped:" in text.splitlines()[-1]


def test_unreachable_server_at_start_exits_1() -> None:
    port = free_port()  # nothing listens there
    proc = run_cli("monitor", "--influx-url", f"http://127.0.0.1:{port}", "--database", "x", "--samples", "1")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"lxctool: error: InfluxDB at http://127.0.0.1:{port} is not answering")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,field", [
    (["--influx-url", "127.0.0.1:8086", "--database", "x"], "--influx-url"),
    (["--influx-url", "http://127.0.0.1:99999", "--database", "x"], "--influx-url"),
    (["--influx-url", "http://127.0.0.1:8086", "--database", "a b"], "--database"),
    (["--influx-url", "http://127.0.0.1:8086", "--database", "x", "--interval", "0"], "--interval"),
    (["--influx-url", "http://127.0.0.1:8086", "--database", "x", "cm-no-such"], "NAME"),
])
def test_monitor_bad_input_exit_2(args: list[str], field: str, lxd: Any) -> None:
    proc = run_cli("monitor", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lxctool: error: {field}: "), proc.stderr


def test_monitor_help_is_fast_and_names_the_options() -> None:
    start = time.monotonic()
    proc = run_cli("monitor", "--help", check=True)
    assert time.monotonic() - start < 3
    assert "--influx-url" in proc.stdout and "--database" in proc.stdout
    env = dict(os.environ)
    out = subprocess.run([lxctool_bin(), "compare", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "--plot" in out.stdout and "--watch" in out.stdout
