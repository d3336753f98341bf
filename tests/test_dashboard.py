"""`lxctool dashboard` against the real daemon: compare's fields in /api/samples, one sampler
whatever the number of browsers (Lxd.requests counted), the token off loopback, signals,
and verify's results on the page's data."""

from __future__ import annotations

import json
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Containers, run_cli
from dashboard_support import Dashboard

pytestmark = pytest.mark.integration


def test_one_sampler_constant_requests_whatever_the_number_of_browsers(lxd: Any, containers: Containers) -> None:
    from starlette.testclient import TestClient

    from lxctool.dashboard.app import create_app
    from lxctool.dashboard.hub import Hub
    from lxctool.lxd.client import Lxd

    name, _ = containers.launch("--cpu", "0.5", "--mem", "64MB", "--processes", "40")
    client_lxd = Lxd()
    hub = Hub(client_lxd)
    started = time.monotonic()
    with TestClient(create_app(hub)) as client:
        with client.websocket_connect("/ws") as ws:
            first = [ws.receive_json() for _ in range(3)]
        one_browser = list(hub.requests_per_sample)
        sockets = [client.websocket_connect("/ws") for _ in range(5)]
        opened = [s.__enter__() for s in sockets]
        try:
            for ws in opened:
                for _ in range(3):
                    assert ws.receive_json()["type"] == "sample"
        finally:
            for s in sockets:
                s.__exit__(None, None, None)
        snap = client.get("/api/samples").json()
    elapsed = time.monotonic() - started
    many_browsers = list(hub.requests_per_sample)[len(one_browser):]
    # every sample costs the one batched instances request, with 1 browser or 5
    assert set(one_browser) == {1} and set(many_browsers) == {1}, hub.requests_per_sample
    assert client_lxd.requests == len(hub.requests_per_sample) + 1 or \
        client_lxd.requests == len(hub.requests_per_sample) + 2  # the first sample (no rates yet), maybe one in flight
    # at most one sample per second for everything
    assert len(hub.requests_per_sample) <= elapsed + 1
    assert all(m["type"] == "sample" for m in first)
    rows = {r["name"]: r for r in first[-1]["rows"]}
    assert rows[name]["pids_max"] == 40 and rows[name]["cpu_limit_cpus"] == 0.5
    assert first[-1]["containers"][name]["limits"]["limits.processes"] == "40"
    # the window holds compare's rows: the same field names as `compare --format json`
    cmp_rows = json.loads(run_cli("compare", name, "--format", "json", check=True).stdout)
    dash = {r["kind"]: set(r) for r in snap["samples"][-1]}
    assert dash["host"] == set(cmp_rows[0]) and dash["container"] == set(cmp_rows[1])


def test_token_required_off_loopback_and_signals_end_with_exit_0(tmp_path: Path) -> None:
    token_file = tmp_path / "dashboard.token"
    d = Dashboard("--listen", "127.0.0.2:0", env={"LXCTOOL_DASHBOARD_TOKEN_FILE": str(token_file)},
                  ignore_sigint=True)
    try:
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert d.url.endswith(f"?token={token}") and d.url.startswith("http://127.0.0.2:")
        assert d.stderr.count(token) == 1  # printed once
        assert d.get("/api/samples")[0] == 401
        assert d.get("/metrics", {"Authorization": "Bearer nope"})[0] == 401
        assert d.get("/api/samples", {"Authorization": f"Bearer {token}"})[0] == 200
        assert d.get(f"/?token={token}")[0] == 200
        _ws_refused(d.base.replace("http://", "ws://") + "ws?token=wrong")
        # started like `cmd &` in a script (SIGINT ignored): Ctrl-C still stops it, exit 0
        assert d.signal(signal.SIGINT) == 0, d.stderr
        assert "dashboard stopped" in d.stderr and "Traceback" not in d.stderr
    finally:
        d.stop()
    d2 = Dashboard("--listen", "127.0.0.2:0", env={"LXCTOOL_DASHBOARD_TOKEN_FILE": str(token_file)})
    try:
        assert d2.url.endswith(f"?token={token}")  # the kept token is used again
        from websockets.sync.client import connect

        # a browser still watching does not keep it from stopping
        with connect(d2.base.replace("http://", "ws://") + "ws", open_timeout=10,
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert json.loads(ws.recv(timeout=15))["type"] == "sample"
            ws.send("hello")  # ignored, the pushes go on
            assert json.loads(ws.recv(timeout=15))["type"] == "sample"
            assert d2.signal(signal.SIGTERM) == 0, d2.stderr
    finally:
        d2.stop()


def _ws_refused(url: str) -> None:
    """A WebSocket handshake with a wrong token gets HTTP 401."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as exc:
        with connect(url, open_timeout=10):
            pass
    assert exc.value.response.status_code == 401


def test_port_in_use_is_refused_before_serving() -> None:
    d = Dashboard("--listen", "127.0.0.1:0")
    try:
        port = d.base.rsplit(":", 1)[1].strip("/")
        proc = run_cli("dashboard", "--listen", f"127.0.0.1:{port}", timeout=30)
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"lxctool: error: --listen: 127.0.0.1:{port} is in use; choose another port"
    finally:
        d.stop()
    proc = run_cli("dashboard", "--listen", "203.0.113.99:0", timeout=30)  # TEST-NET: no address of this host
    assert proc.returncode == 2 and proc.stderr.startswith("lxctool: error: --listen: 203.0.113.99:0 cannot be bound")
    proc = run_cli("dashboard", env={"LXCTOOL_SOCKET": "/nonexistent/unix.socket"}, timeout=30)
    assert proc.returncode == 1 and "LXD is not answering" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_keeps_its_results_and_the_dashboard_shows_them(containers: Containers, tmp_path: Path) -> None:
    name, _ = containers.launch("--processes", "30")
    env = {"LXCTOOL_VERIFY_DIR": str(tmp_path / "verify")}
    proc = run_cli("verify", name, "--only", "processes", "--format", "json", env=env)
    assert proc.returncode == 0, proc.stderr
    kept = json.loads((tmp_path / "verify" / f"{name}.json").read_text())
    assert kept["name"] == name and kept["exit_code"] == 0
    assert [(f["limit"], f["verdict"]) for f in kept["findings"]] == [("limits.processes", "ENFORCED")]
    d = Dashboard("--listen", "127.0.0.1:0", env=env)
    try:
        snap = d.wait_samples(lambda s: name in s.get("verify", {}))
        assert snap["verify"][name]["findings"][0]["verdict"] == "ENFORCED"
    finally:
        d.stop()


def test_command_health_checks_run_in_the_worker_and_a_sample_stays_one_request(
        lxd: Any, containers: Containers, run_prefix: str, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from lxctool.dashboard import inventory
    from lxctool.dashboard.app import create_app
    from lxctool.dashboard.hub import Hub
    from lxctool.lxd.client import Lxd

    stack = f"{run_prefix}-dh"
    good, _ = containers.launch("--mem", "64MB", name=f"{stack}-good-1")
    bad, _ = containers.launch("--mem", "64MB", name=f"{stack}-bad-1")
    # the stack's secret names are masked, whatever they look like
    lxd.patch_instance(good, {"config": {"environment.APP_MODE": "fast", "environment.LEVEL": "3"}})
    path = tmp_path / "stack.yaml"
    path.write_text(f"""name: {stack}
secrets: [APP_MODE]
services:
  good: {{image: busybox, healthcheck: {{command: [sh, -c, "echo all good"]}}}}
  bad: {{image: busybox, healthcheck: {{command: [sh, -c, "echo db is down >&2; exit 3"]}}}}
""")

    def settled(snap: dict[str, Any]) -> bool:
        rows = {r["service"]: r for r in snap.get("services", []) if r["stack"] == stack}
        return rows.get("good", {}).get("status") == "healthy" and rows.get("bad", {}).get("status") == "unhealthy"

    # the real command: -f read by the stacks loader, command checks run, shown in /api/samples
    d = Dashboard("--listen", "127.0.0.1:0", "-f", str(path))
    try:
        snap = d.wait_samples(settled, timeout=40)
    finally:
        d.stop()
    rows = {r["service"]: r for r in snap["services"] if r["stack"] == stack}
    assert rows["good"]["detail"] == "exit 0: all good", rows["good"]
    assert rows["good"]["probes"] == {good: {"healthy": True, "output": "exit 0: all good"}}
    assert rows["bad"]["detail"] == f"{bad}: exit 3: db is down", rows["bad"]
    assert rows["bad"]["probes"][bad]["healthy"] is False
    assert snap["containers"][good]["environment"] == {"APP_MODE": "***", "LEVEL": "3"}

    # in process: the worker's exec requests go through its own connection, never a sample's
    lxd = Lxd()
    hub = Hub(lxd, inventory.load_stacks((str(path),)))
    started = time.monotonic()
    with TestClient(create_app(hub)) as client:
        deadline = time.monotonic() + 40
        while not (settled(client.get("/api/samples").json()) and hub.health.rounds >= 2):
            assert time.monotonic() < deadline, hub.snapshot()["services"]
            time.sleep(0.5)
    elapsed = time.monotonic() - started
    assert set(hub.requests_per_sample) == {1}, hub.requests_per_sample
    assert lxd.requests <= len(hub.requests_per_sample) + 2  # the first sample (no rates yet), maybe one in flight
    # at most one round per HEALTH_EVERY_S; each command probe costs at most 6 requests
    # (exec, wait, then read and delete stdout and stderr): 2 replicas -> at most 12 per round
    assert hub.health.rounds <= elapsed / inventory.HEALTH_EVERY_S + 1
    assert hub.health.lxd is not None and 0 < hub.health.lxd.requests <= 12 * hub.health.rounds
