"""Prometheus conventions, checked by Prometheus's own tools: `promtool check metrics` has nothing
to say about `compare --format prometheus` or the dashboard's /metrics, and a real Prometheus
(Debian's, started here on loopback, killed by PID) scrapes the dashboard through its token."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import Containers, run_cli
from dashboard_support import Dashboard, need

pytestmark = pytest.mark.integration


def promtool_says(text: str) -> str:
    """What `promtool check metrics` prints about text (nothing when it follows the conventions)."""
    need("promtool")
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    return (proc.stdout + proc.stderr).strip() + ("" if proc.returncode == 0 else f" (exit {proc.returncode})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compare_prometheus_format_passes_promtool(containers: Containers) -> None:
    name, _ = containers.launch("--cpu", "0.5", "--mem", "64MB", "--processes", "40")
    text = run_cli("compare", "--format", "prometheus", check=True).stdout
    assert promtool_says(text) == ""
    assert f'lxctool_tasks_max{{kind="container",name="{name}"}} 40' in text
    assert "# TYPE lxctool_cpu_seconds_total counter" in text
    assert "# TYPE lxctool_network_receive_bytes_total counter" in text
    assert "per_s" not in text and "percent" not in text


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query through Prometheus's HTTP API."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_a_real_prometheus_scrapes_the_dashboard(containers: Containers, tmp_path: Path) -> None:
    need("prometheus")
    name, _ = containers.launch("--cpu", "0.5", "--mem", "64MB", "--processes", "40")
    token_file = tmp_path / "dashboard.token"
    dash = Dashboard("--listen", "127.0.0.2:0", env={"LXCTOOL_DASHBOARD_TOKEN_FILE": str(token_file)})
    prom: subprocess.Popen[bytes] | None = None
    try:
        token = token_file.read_text().strip()
        status, body = dash.get("/metrics", {"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 20
        while f'name="{name}"' not in body and time.monotonic() < deadline:  # the first sample takes a second
            time.sleep(0.5)
            status, body = dash.get("/metrics", {"Authorization": f"Bearer {token}"})
        assert status == 200 and promtool_says(body) == ""
        target = dash.base.split("//")[1].strip("/")
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lxctool
    metrics_path: /metrics
    authorization: {{credentials: "{token}"}}
    static_configs: [{{targets: ["{target}"]}}]
""")
        log = open(tmp_path / "prometheus.log", "wb")
        prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            try:
                found = query(base, f'lxctool_tasks_max{{name="{name}"}}')
                rate = query(base, 'rate(lxctool_cpu_seconds_total{name="host"}[10s])')
            except OSError:
                found, rate = [], []
            if found and rate:
                break
            time.sleep(1)
        assert found and found[0]["value"][1] == "40", found
        assert found[0]["metric"]["job"] == "lxctool" and found[0]["metric"]["kind"] == "container"
        assert float(rate[0]["value"][1]) > 0  # Prometheus computes the rate from the counter
        up = query(base, 'up{job="lxctool"}')
        assert up[0]["value"][1] == "1"
    finally:
        if prom is not None and prom.poll() is None:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        dash.stop()
