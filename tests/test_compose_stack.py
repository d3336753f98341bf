"""Integration (real daemon): a busybox docker-compose file with limits, a network with fixed
addresses, a published port, a health-checked dependency and a named volume comes up as LXD
system containers; plan afterwards is empty; verify -f proves its limits; convert prints the
stack that ran; down removes it."""

from __future__ import annotations

import ipaddress
import json
import urllib.request
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import run_cli, verify_findings
from test_stack_up import free_port, free_subnet

pytestmark = pytest.mark.integration


@pytest.fixture
def compose_file(lxd: Any, run_prefix: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str, str]]:
    """A compose file in a folder of its own; the stack is taken down afterwards even on failure."""
    name = f"{run_prefix}-cz"
    net = ipaddress.IPv4Interface(free_subnet(lxd)).network
    db_ip = str(net.network_address + 10)
    port = free_port()
    doc = {
        "version": "3.8",
        "name": name,
        "services": {
            "db": {"image": "busybox", "mem_limit": "64m", "cpus": 0.5, "pids_limit": 40,
                   "volumes": ["data:/var/lib/data"],
                   "networks": {"back": {"ipv4_address": db_ip}},
                   "healthcheck": {"test": ["CMD-SHELL", "test -d /var/lib/data"], "interval": "1s",
                                   "retries": 20},
                   "restart": "always"},
            "web": {"image": "busybox:latest", "depends_on": {"db": {"condition": "service_healthy"}},
                    "ports": [f"{port}:80"], "environment": ["DB_HOST=" + db_ip],
                    "networks": ["back"],
                    "x-lxctool": {"provision": {"commands": [
                        ["sh", "-c", "mkdir -p /www && echo compose-ok > /www/index.html && "
                                     "httpd -p 80 -h /www"]]}}},
        },
        "networks": {"back": {"ipam": {"config": [{"subnet": str(net)}]}}},
        "volumes": {"data": {}},
    }
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {"LXCTOOL_STACK_STATE_DIR": str(tmp_path / "state"), "LXCTOOL_RUN_DIR": str(tmp_path / "run")}
    try:
        yield path, env, db_ip, str(port)
    finally:
        run_cli("down", "-f", str(path), "--volumes", env=env)


def _mentions(snap: dict[str, Any], name: str) -> dict[str, Any]:
    """The parts of a host snapshot that name this stack (other sessions may share the daemon)."""
    return {k: [x for x in v if name in str(x)] if isinstance(v, list) else
            [line for line in str(v).splitlines() if name in line] for k, v in snap.items()}


def test_compose_file_comes_up_is_converged_and_its_limits_hold(compose_file: Any, lxd: Any,
                                                                  snapshot: Any) -> None:
    path, env, db_ip, port = compose_file
    before = _mentions(snapshot(), yaml.safe_load(path.read_text())["name"])
    up = run_cli("up", "-f", str(path), "--format", "json", env=env, check=True)
    assert "services.db.restart: not carried over" in up.stderr   # reported, never dropped silently
    name = yaml.safe_load(path.read_text())["name"]
    db = lxd.instance(f"{name}-db-1")
    cfg = db["config"]
    # compose's meaning: cpus is a hard CFS quota, 64m is 64 MiB, pids_limit is limits.processes
    assert cfg["limits.cpu.allowance"] == "50ms/100ms" and cfg["limits.memory"] == "64MiB"
    assert cfg["limits.processes"] == "40"
    state = lxd.instance_state(f"{name}-db-1")
    assert db_ip in [a["address"] for n in state["network"].values() for a in n["addresses"]]
    # the published port listens on loopback only, and answers from the web container
    listeners = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    assert [line.split()[3] for line in listeners.splitlines()] == [f"127.0.0.1:{port}"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as resp:
        assert resp.read().strip() == b"compose-ok"
    env_out = run_cli("exec", f"{name}-web-1", "--", "cat", "/proc/1/environ", check=True).stdout
    assert f"DB_HOST={db_ip}" in env_out.replace("\0", "\n") or \
        lxd.instance(f"{name}-web-1")["config"].get("environment.DB_HOST") == db_ip

    plan = run_cli("plan", "-f", str(path), "--format", "json", env=env, check=True)
    assert {op["kind"] for op in json.loads(plan.stdout)} == {"noop"}
    assert run_cli("plan", "-f", str(path), "--check", env=env).returncode == 0

    proof = run_cli("verify", "-f", str(path), "db", "--duration", "3", "--format", "json", env=env)
    findings = verify_findings(proof)
    assert {k: f["verdict"] for k, f in findings.items()} == {
        "limits.cpu.allowance": "ENFORCED", "limits.memory": "ENFORCED", "limits.processes": "ENFORCED"}
    assert proof.returncode == 0

    # convert prints the stack that ran: planned as a stack file, it is the same stack, all noop
    converted = run_cli("convert", str(path), check=True).stdout
    stack_file = path.with_name("stack.yaml")
    stack_file.write_text(converted)
    assert "# lxctool: services.db.restart: not carried over" in converted
    replan = run_cli("plan", "-f", str(stack_file), "--format", "json", env=env, check=True)
    assert {op["kind"] for op in json.loads(replan.stdout)} == {"noop"}

    assert run_cli("down", "-f", str(path), "--volumes", env=env).returncode == 0
    assert _mentions(snapshot(), name) == before   # no container, network, volume or rule left


def test_bind_mounts_need_the_flag_and_bad_files_change_nothing(tmp_path: Path, snapshot: Any) -> None:
    before = snapshot()
    (tmp_path / "conf").mkdir()
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  s: {image: busybox, volumes: ['./conf:/etc/conf:ro']}\n")
    proc = run_cli("up", "-f", str(path))
    assert proc.returncode == 2 and "services.s.volumes.0" in proc.stderr and "--allow-bind-mounts" in proc.stderr
    path.write_text("services:\n  s: {image: busybox, mem_limit: [1], bogus: 2}\n")
    proc = run_cli("plan", "-f", str(path))
    assert proc.returncode == 2 and "services.s.mem_limit" in proc.stderr and "Traceback" not in proc.stderr
    odd = tmp_path / "lab.yaml"
    odd.write_text("services:\n  s: {image: busybox, build: ./web}\n")
    proc = run_cli("plan", "-f", str(odd), "--compose")
    assert proc.returncode == 2 and "services.s.build" in proc.stderr
    strict = tmp_path / "docker-compose.yml"
    strict.write_text("services:\n  s: {image: busybox, restart: always}\n")
    proc = run_cli("plan", "-f", str(strict), "--strict")
    assert proc.returncode == 2 and "services.s.restart" in proc.stderr
    assert snapshot() == before


def test_the_labs_compose_file_serves_the_wiki_behind_the_balancer(lxd: Any, run_prefix: str,
                                                                     tmp_path: Path) -> None:
    """examples/mediawiki/docker-compose.yml (the seed's file, reconstructed), under this run's name."""
    from test_mediawiki_stack import UP_TIMEOUT, cleanup, example_copy, wiki

    stack = f"{run_prefix}-mwc"
    compose = example_copy(tmp_path, "docker-compose.yml", "mediawiki-compose", stack)
    try:
        up = run_cli("up", "-f", str(compose), check=True, timeout=UP_TIMEOUT)
        for dropped in ("services.telegraf.volumes", "services.chronograf"):
            assert dropped in up.stderr  # reported, not dropped silently
        answers = [wiki("/") for _ in range(4)]
        assert [a[0] for a in answers] == [200] * 4, answers
        assert {a[1] for a in answers} == {f"{stack}-web1-1", f"{stack}-web2-1"}
        assert all("Lab Wiki" in a[2] for a in answers)
        plan = run_cli("plan", "-f", str(compose), "--format", "json", check=True)
        assert {op["kind"] for op in json.loads(plan.stdout)} == {"noop"}
        limits = lxd.instance(f"{stack}-database-1")["config"]
        assert (limits["limits.memory"], limits["limits.cpu.allowance"]) == ("512MiB", "100ms/100ms")
    finally:
        cleanup(lxd, stack, compose)
    assert not [i["name"] for i in lxd.instances_full() if i["name"].startswith(f"{stack}-")]
