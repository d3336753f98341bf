"""Dashboard pieces without the daemon: --listen parsing, the token file and gate (through the real
Starlette app), secret masking, stack files, health checks against real local sockets, and the
command's refusals (exit 2, one line naming the option)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import REPO, run_cli

from lxctool.core.errors import SpecError
from lxctool.dashboard import inventory
from lxctool.dashboard.auth import COOKIE, ensure_token, needs_token, parse_listen


@pytest.mark.parametrize("text,want", [("127.0.0.1:8888", ("127.0.0.1", 8888)), ("[::1]:0", ("::1", 0)),
                                       ("localhost:80", ("localhost", 80)), ("0.0.0.0:9", ("0.0.0.0", 9))])
def test_listen_accepts_address_and_port(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["8888", "127.0.0.1", "127.0.0.1:http", "example.org:80", ":80", "1.2.3.4:70000"])
def test_listen_refuses_with_the_option_named(text: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_listen(text)
    assert exc.value.errors[0].startswith("--listen: ")


def test_only_loopback_goes_without_token() -> None:
    assert not any(needs_token(h) for h in ("127.0.0.1", "::1", "localhost"))
    assert all(needs_token(h) for h in ("127.0.0.2", "0.0.0.0", "10.191.0.1", "::"))


def test_token_file_is_created_0600_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dashboard.token"
    token, created = ensure_token(path)
    assert created and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    again, created = ensure_token(path)
    assert again == token and not created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_environment_secrets_are_masked() -> None:
    config = {"environment.DB_HOST": "10.0.0.5", "environment.DB_PASSWORD": "hunter2",
              "environment.APP_MODE": "fast", "environment.API_TOKEN": "abc", "limits.cpu": "1"}
    env = inventory.mask_environment(config, {"APP_MODE"})
    assert env == {"API_TOKEN": "***", "APP_MODE": "***", "DB_HOST": "10.0.0.5", "DB_PASSWORD": "***"}


def test_stack_files_are_read_by_the_stacks_loader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    for path, words in ((bad, "not valid YAML"), (tmp_path / "missing.yaml", "cannot read")):
        with pytest.raises(SpecError) as exc:
            inventory.load_stacks((str(path),))
        assert words in exc.value.errors[0]
    # the stacks code's own checks apply: every problem, each naming its field
    bad.write_text("name: demo\nservices:\n  web: {image: busybox, replicas: two, nope: 1}\n")
    with pytest.raises(SpecError) as exc:
        inventory.load_stacks((str(bad),))
    assert any(e.startswith("services.web.replicas") for e in exc.value.errors), exc.value.errors
    assert any(e.startswith("services.web.nope: unknown key") for e in exc.value.errors), exc.value.errors
    # a compose file is read the way `lxctool ps -f` reads it
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: busybox\n    deploy: {replicas: 2}\n"
                       "    healthcheck: {test: [CMD, 'true']}\n"
                       "networks:\n  default: {ipam: {config: [{subnet: 10.250.7.0/24}]}}\n")
    (stack,) = inventory.load_stacks((str(compose),))
    web = stack.service("web")
    assert web.replicas == 2 and web.healthcheck is not None and web.healthcheck.command == ("true",)


def _stack(tmp_path: Path, port: int) -> Any:
    f = tmp_path / "stack.yaml"
    f.write_text(f"""name: demo
secrets: [DB_PASSWORD]
services:
  db: {{image: busybox}}
  web: {{image: busybox, replicas: 2, healthcheck: {{tcp: {port}}}}}
  api: {{image: busybox, healthcheck: {{http: {{port: {port}, path: /, status: 200}}}}}}
""")
    return inventory.load_stacks((str(f),))[0]


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP listener on 127.0.0.1 that answers HTTP 200."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def _inst(name: str, status: str = "Running", **config: str) -> dict[str, Any]:
    return {"name": name, "status": status, "expanded_config": config, "expanded_devices": {}}


def test_health_per_service_from_keys_names_and_real_probes(tmp_path: Path, listener: int) -> None:
    stack = _stack(tmp_path, listener)
    insts = [_inst("demo-web-1"), _inst("demo-web-2", "Stopped"), _inst("demo-api-1"),
             _inst("x-db", **{"user.lxctool.stack": "demo", "user.lxctool.service": "db"}), _inst("solo")]
    ctrs = inventory.containers(insts, [stack])
    assert (ctrs["x-db"]["stack"], ctrs["x-db"]["service"]) == ("demo", "db")
    assert (ctrs["demo-web-1"]["stack"], ctrs["demo-web-1"]["service"]) == ("demo", "web")
    assert ctrs["solo"]["stack"] is None
    ipv4 = {n: ["127.0.0.1"] for n in ctrs}
    health = inventory.Health([stack])
    rows = {r["service"]: r for r in health.services(ctrs)}
    # a sample never probes: before the worker's first round the check is only named
    assert rows["api"]["status"] == "running" and "not probed yet" in rows["api"]["detail"]
    health.probe_round(ctrs, ipv4)
    rows = {r["service"]: r for r in health.services(ctrs)}
    assert rows["web"]["status"] == "degraded" and rows["web"]["running"] == 1 and rows["web"]["replicas"] == 2
    assert rows["api"]["status"] == "healthy" and "-> 200" in rows["api"]["detail"]
    assert rows["api"]["probes"]["demo-api-1"]["healthy"] is True
    assert rows["db"]["status"] == "running" and "no health check declared" in rows["db"]["detail"]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    stack2 = _stack(tmp_path, port)
    ctrs2 = inventory.containers([_inst("demo-api-1")], [stack2])
    health2 = inventory.Health([stack2])
    health2.probe_round(ctrs2, {"demo-api-1": ["127.0.0.1"]})
    rows = {r["service"]: r for r in health2.services(ctrs2)}
    assert rows["api"]["status"] == "unhealthy" and "demo-api-1: GET http://127.0.0.1" in rows["api"]["detail"]
    assert rows["web"]["status"] == "down" and rows["web"]["running"] == 0


def test_verify_results_are_read_from_the_files_verify_writes(tmp_path: Path, monkeypatch: Any) -> None:
    from lxctool.verify.runner import save_results

    monkeypatch.setenv("LXCTOOL_VERIFY_DIR", str(tmp_path / "verify"))
    path = save_results("c1", [{"limit": "limits.processes", "configured": "50", "measured": "50",
                                "verdict": "ENFORCED", "evidence": "fork failed at 50"}], 0)
    assert path == tmp_path / "verify" / "c1.json"
    got = inventory.verify_results(["c1", "c2"])
    assert list(got) == ["c1"] and got["c1"]["exit_code"] == 0
    assert got["c1"]["findings"] == [{"limit": "limits.processes", "configured": "50", "measured": "50",
                                      "verdict": "ENFORCED"}]


def _client(token: str | None) -> Any:
    from starlette.testclient import TestClient

    from lxctool.dashboard.app import create_app
    from lxctool.dashboard.hub import Hub
    from lxctool.lxd.client import Lxd

    # no `with`: the lifespan (and so the sampler) does not start; only the gate is tested here
    return TestClient(create_app(Hub(Lxd(socket_path="/nonexistent/unix.socket")), token))


def test_token_gate_on_every_route_and_the_websocket() -> None:
    from starlette.testclient import WebSocketDenialResponse

    client = _client("s3cret-token")
    for path in ("/", "/api/samples", "/metrics", "/static/app.js", "/static/vendor/uPlot.iife.min.js"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200, path
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/ws?token=wrong"):
            pass
    assert denied.value.status_code == 401
    resp = client.get("/?token=s3cret-token")
    assert resp.status_code == 200 and COOKIE in resp.headers["set-cookie"]
    assert "HttpOnly" in resp.headers["set-cookie"]
    assert client.get("/api/samples").status_code == 200  # the cookie carries it now
    with client.websocket_connect("/ws") as ws:  # cookie again: accepted
        ws.close()


def test_read_only_and_nothing_from_elsewhere() -> None:
    client = _client(None)
    assert client.post("/api/samples").status_code == 405
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert client.get("/api/samples").json()["samples"] == []


def test_cli_refuses_bad_options_with_exit_2(tmp_path: Path) -> None:
    for args, start in ((["--listen", "nope"], "lxctool: error: --listen: "),
                        (["-f", str(tmp_path / "none.yaml")], "lxctool: error: -f: ")):
        proc = run_cli("dashboard", *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(start) and "Traceback" not in proc.stderr
    # a stack file the stacks code refuses: the same lines as `lxctool ps -f` says, one per problem
    bad = tmp_path / "stack.yaml"
    bad.write_text("name: demo\nservices:\n  web: {image: busybox, replicas: two, nope: 1}\n")
    proc, ps = run_cli("dashboard", "-f", str(bad)), run_cli("ps", "-f", str(bad))
    assert proc.returncode == ps.returncode == 2, proc.stderr
    assert proc.stderr == ps.stderr and len(proc.stderr.splitlines()) >= 2, proc.stderr
    assert "services.web.nope" in proc.stderr and "Traceback" not in proc.stderr


def test_help_does_not_import_the_web_stack() -> None:
    code = "import sys, lxctool.cli; print(sorted(m for m in ('starlette', 'uvicorn', 'websockets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"
