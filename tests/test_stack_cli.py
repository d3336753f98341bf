"""Stack commands as a user runs them: refusals (exit 2, nothing changed), the per-stack lock, and
an `up` stopped by SIGTERM that the next `up` converges."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import lxctool_bin, run_cli


def stack_file(tmp_path: Path, doc: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, {"LXCTOOL_STACK_STATE_DIR": str(tmp_path / "state"), "LXCTOOL_RUN_DIR": str(tmp_path / "run")}


def test_broken_file_is_refused_with_every_path_and_exit_2(tmp_path: Path) -> None:
    path, env = stack_file(tmp_path, {"name": "x", "services": {
        "a": {"image": "busybox", "limits": {"mem": "512XB"}, "depends_on": ["b"]},
        "b": {"image": "busybox", "depends_on": ["a"], "replicas": 0}}})
    proc = run_cli("plan", "-f", str(path), env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "services.a.limits.mem: '512XB' is not a size" in proc.stderr
    assert "services.b.replicas: 0 must be at least 1" in proc.stderr
    assert "dependency cycle" in proc.stderr and "Traceback" not in proc.stderr


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path, env = stack_file(tmp_path, {"name": "locked", "services": {"a": {"image": "busybox"}}})
    lock_dir = tmp_path / "run" / "stacks" / "locked"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(f"PID {os.getpid()} (up)\n")
        fh.flush()
        for command in ("up", "down"):
            proc = run_cli(command, "-f", str(path), env=env)
            assert proc.returncode == 2, proc.stderr
            assert f"stack locked is being changed by PID {os.getpid()}" in proc.stderr


@pytest.mark.integration
def test_unknown_image_and_profile_refused_before_any_change(lxd: Any, run_prefix: str, tmp_path: Path,
                                                             snapshot: Any) -> None:
    path, env = stack_file(tmp_path, {"name": f"{run_prefix}r", "networks": {"n": {"subnet": "10.251.77.1/24"}},
                                      "services": {"a": {"image": "no-such-image", "profiles": ["nope"],
                                                         "networks": {"n": {}, "no-net": {}}}}})
    before = snapshot()
    proc = run_cli("up", "-f", str(path), env=env)
    assert proc.returncode == 2
    for part in ("services.a.image: no image or recipe 'no-such-image'", "services.a.profiles: 'nope'",
                 "services.a.networks.no-net: not a network of this stack"):
        assert part in proc.stderr
    after = snapshot()
    assert [i for i in after["instances"] if i[0].startswith(run_prefix)] == \
        [i for i in before["instances"] if i[0].startswith(run_prefix)]
    assert [n for n in after["networks"] if n[0].startswith(run_prefix)] == []


@pytest.mark.integration
def test_sigterm_stops_up_cleanly_and_the_next_up_converges(lxd: Any, run_prefix: str, tmp_path: Path) -> None:
    name = f"{run_prefix}g"
    doc: dict[str, Any] = {"name": name, "services": {
        "slow": {"image": "busybox", "healthcheck": {"command": ["test", "-f", "/tmp/ok"], "interval": 0.2,
                                                     "retries": 500}},
        "after": {"image": "busybox", "depends_on": {"slow": {"condition": "healthy"}}}}}
    path, env = stack_file(tmp_path, doc)
    try:
        proc = subprocess.Popen([lxctool_bin(), "up", "-f", str(path)], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            inst = lxd.instance(f"{name}-slow-1")
            if inst is not None and inst.get("status") == "Running":
                break
            time.sleep(0.2)
        time.sleep(1)  # now probing the health check
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert lxd.instance(f"{name}-after-1") is None
        doc["services"]["slow"]["healthcheck"]["command"] = ["true"]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        proc2 = run_cli("up", "-f", str(path), env=env)
        assert proc2.returncode == 0, proc2.stderr
        assert lxd.instance(f"{name}-after-1")["status"] == "Running"
    finally:
        run_cli("down", "-f", str(path), "--volumes", env=env)
    assert lxd.instance(f"{name}-slow-1") is None


@pytest.mark.integration
def test_monitor_feeds_the_stacks_influxdb_is_restarted_and_stopped(lxd: Any, run_prefix: str,
                                                                     tmp_path: Path) -> None:
    import json
    import urllib.parse
    import urllib.request

    if lxd.image_alias("influxdb") is None:
        pytest.skip("the influxdb image is not built (lxctool image build influxdb)")
    name = f"{run_prefix}m"
    doc = {"name": name, "services": {
        "metrics": {"image": "influxdb", "limits": {"mem": "256MB"},
                    "healthcheck": {"http": {"port": 8086, "path": "/ping", "status": 204}, "retries": 120}},
        "app": {"image": "busybox"}},
        "monitor": {"influxdb": "metrics", "database": "lxd", "interval": 1}}
    path, env = stack_file(tmp_path, doc)
    env["LXCTOOL_LOG_DIR"] = str(tmp_path / "log")
    pidfile = tmp_path / "run" / "stacks" / name / "monitor.pid"
    try:
        proc = run_cli("up", "-f", str(path), env=env)
        assert proc.returncode == 0, proc.stderr
        assert "monitor started" in proc.stderr
        ps = json.loads(run_cli("ps", "-f", str(path), "--format", "json", env=env, check=True).stdout)
        pid = ps["monitor"]["pid"]
        assert ps["monitor"]["running"] and pid == int(pidfile.read_text().split()[0])
        ip = next(r["ipv4"][0] for r in ps["services"] if r["service"] == "metrics")
        query = urllib.parse.urlencode({"db": "lxd", "q": 'SELECT count(memory_bytes) FROM lxctool GROUP BY "name"'})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {f"{name}-app-1", f"{name}-metrics-1"} <= seen:
            time.sleep(1)
            with opener.open(f"http://{ip}:8086/query?{query}", timeout=5) as resp:
                series = json.loads(resp.read())["results"][0].get("series") or []
            seen = {s["tags"]["name"] for s in series}
        assert {f"{name}-app-1", f"{name}-metrics-1"} <= seen, seen
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        again = run_cli("up", "-f", str(path), env=env)
        assert again.returncode == 0 and "monitor restarted" in again.stderr, again.stderr
        new_pid = int(pidfile.read_text().split()[0])
        assert new_pid != pid and Path(f"/proc/{new_pid}").exists()
        log = tmp_path / "log" / f"lxctool-monitor-{name}.log"
        deadline = time.monotonic() + 20
        while log.read_text().count("pushing samples") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the new monitor got through to InfluxDB again
        assert log.read_text().count("pushing samples") == 2
        assert run_cli("down", "-f", str(path), env=env).returncode == 0
        time.sleep(0.5)
        assert not pidfile.exists()
        assert not Path(f"/proc/{new_pid}/cmdline").exists() or b"monitor" not in Path(
            f"/proc/{new_pid}/cmdline").read_bytes()
    finally:
        run_cli("down", "-f", str(path), "--volumes", env=env)
