"""Integration: a real 3-member LXD cluster on this machine (scripts/cluster-sandbox.sh), driven
through the remote `sandbox`; the sandbox is removed afterwards with nothing left over.

One test runs in CI (placement by --target, member in list/compare/cluster list); a member's
daemon killed and what lxctool then says is behind --run-slow (it waits for the heartbeat).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import REPO, lxctool_bin, run_cli

pytestmark = pytest.mark.integration
SCRIPT = REPO / "scripts" / "cluster-sandbox.sh"
MEMBERS = ("member1", "member2", "member3")


def _leftovers(sandbox_dir: Path, names: list[str]) -> list[str]:
    """Anything of the sandbox still on the host: dirs, links, rules, processes, cgroups."""
    left = []
    if sandbox_dir.exists():
        left.append(str(sandbox_dir))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += [w for w in ("lxcsb0", "vsb1h", "vsb2h", "vsb3h") if f" {w}:" in links or f" {w}@" in links]
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    left += [line for line in rules.splitlines() if "lxcsb0" in line]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(sandbox_dir) in cmd or "10.253.0.1" in cmd or "10.252.0." in cmd:
                left.append(f"process {pid}: {cmd[:80]}")
    left += [n for n in names if Path(f"/sys/fs/cgroup/memory/lxc.payload.{n}").exists()]
    return left


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, lxd: Any, run_prefix: str) -> Iterator[dict[str, str]]:
    """`cluster-sandbox.sh up 3` with a private lxctool config; `down` and a leftover check after."""
    # not under pytest's 0700 tmp dirs: the containers' unprivileged root must traverse the path
    sandbox_dir = Path(f"/var/lib/lxctool-sandbox-{run_prefix}")
    env = {**os.environ, "LXCTOOL": lxctool_bin(), "LXCTOOL_SANDBOX_DIR": str(sandbox_dir),
           "LXCTOOL_CONFIG_DIR": str(tmp_path_factory.mktemp("lxctool-config"))}
    cfg = {"LXCTOOL_CONFIG_DIR": env["LXCTOOL_CONFIG_DIR"], "LXCTOOL_REMOTE": "sandbox"}
    created: list[str] = []
    up = subprocess.run(["bash", str(SCRIPT), "up", "3"], capture_output=True, text=True, env=env, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        yield {**cfg, "_dir": str(sandbox_dir), "_names": created}  # type: ignore[dict-item]
    finally:
        down = subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True, text=True, env=env,
                              timeout=300)
        assert down.returncode == 0, down.stderr
        assert _leftovers(sandbox_dir, created) == []
        remotes = json.loads(run_cli("remote", "list", "--format", "json", env=cfg).stdout)
        assert [r["name"] for r in remotes] == ["local"]


def _env(sandbox: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in sandbox.items() if not k.startswith("_")}


def test_cluster_places_by_target_and_shows_members(sandbox: dict[str, Any], run_prefix: str) -> None:
    """cluster list says Online x3; --target puts containers on the named members; list and
    compare show the member, compare with one host row per member read through the API."""
    env = _env(sandbox)
    members = json.loads(run_cli("cluster", "list", "--format", "json", env=env, check=True).stdout)
    assert [(m["name"], m["status"]) for m in members] == [(n, "Online") for n in MEMBERS]
    assert all(isinstance(m["roles"], list) and m["instances"] == 0 for m in members)
    placed = {}
    for member in ("member2", "member3"):
        name = f"{run_prefix}-cl{member[-1]}"
        sandbox["_names"].append(name)
        proc = run_cli("launch", name, "--target", member, "--cpu", "1", "--mem", "128MB",
                       "--format", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        row = json.loads(proc.stdout)
        assert row["state"] == "RUNNING" and row["member"] == member and row["ipv4"]
        placed[name] = member
    rows = json.loads(run_cli("list", "--format", "json", env=env, check=True).stdout)
    assert {r["name"]: r["member"] for r in rows} == placed
    counts = {m["name"]: m["instances"] for m in
              json.loads(run_cli("cluster", "list", "--format", "json", env=env, check=True).stdout)}
    assert counts == {"member1": 0, "member2": 1, "member3": 1}
    data = json.loads(run_cli("compare", "--interval", "0.3", "--format", "json", env=env, check=True).stdout)
    hosts = [r for r in data if r["kind"] == "host"]
    assert [h["member"] for h in hosts] == list(MEMBERS)
    assert all(h["state"] == "ONLINE" and h["memory_limit_bytes"] > 0 and h["cpu_limit_cpus"] for h in hosts)
    assert {r["name"]: r["member"] for r in data if r["kind"] == "container"} == placed
    bad = run_cli("launch", f"{run_prefix}-clx", "--target", "member9", env=env)
    assert bad.returncode == 2 and "member9" in bad.stderr
    # the member's daemon really runs it: its container's cgroup is on this host, limit applied
    name2 = next(n for n, m in placed.items() if m == "member2")
    limit = Path(f"/sys/fs/cgroup/memory/lxc.payload.{name2}/memory.limit_in_bytes").read_text().strip()
    assert int(limit) == 128000000 // os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_a_killed_member_shows_offline_with_clear_errors(sandbox: dict[str, Any], run_prefix: str) -> None:
    """kill -9 one member's daemon: cluster list says Offline, list keeps its container as ERROR
    with a warning, info on it fails with one clear line; back Online after revive."""
    env = _env(sandbox)
    name = f"{run_prefix}-ck3"
    sandbox["_names"].append(name)
    run_cli("launch", name, "--target", "member3", env=env, check=True)
    script_env = {**os.environ, "LXCTOOL_SANDBOX_DIR": sandbox["_dir"]}
    subprocess.run(["bash", str(SCRIPT), "kill", "3"], check=True, env=script_env, capture_output=True)
    deadline = time.monotonic() + 90
    status = {}
    while time.monotonic() < deadline:
        proc = run_cli("cluster", "list", "--format", "json", env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr
        status = {m["name"]: m["status"] for m in json.loads(proc.stdout)}
        if status["member3"] == "Offline":
            break
        time.sleep(2)
    assert status == {"member1": "Online", "member2": "Online", "member3": "Offline"}
    listed = run_cli("list", "--format", "json", env=env)
    assert listed.returncode == 0 and "member3 is not answering" in listed.stderr
    assert {r["name"]: (r["member"], r["state"]) for r in json.loads(listed.stdout)}[name] == ("member3", "ERROR")
    info = run_cli("info", name, env=env)
    assert info.returncode == 1 and "not answering" in info.stderr and "Traceback" not in info.stderr
    target = run_cli("launch", f"{run_prefix}-ck4", "--target", "member3", env=env)
    assert target.returncode == 1 and "Offline" in target.stderr
    subprocess.run(["bash", str(SCRIPT), "revive", "3"], check=True, env=script_env, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = {m["name"]: m["status"] for m in json.loads(
            run_cli("cluster", "list", "--format", "json", env=env, check=True).stdout)}
        if status["member3"] == "Online":
            break
        time.sleep(1)
    assert status["member3"] == "Online"
    assert run_cli("delete", name, env=env).returncode == 0


def _stack(tmp_path: Path, name: str, db_member: str) -> Path:
    path = tmp_path / f"{name}-{db_member}.yaml"
    path.write_text(f"name: {name}\nservices:\n"
                    f"  db: {{image: busybox, limits: {{mem: 64MB}}, placement: {{member: {db_member}}}}}\n"
                    "  web: {image: busybox, replicas: 3, depends_on: [db], placement: {spread: true}}\n")
    return path


def _placed(env: dict[str, str], path: Path) -> dict[str, str]:
    rows = json.loads(run_cli("ps", "-f", str(path), "--no-health", "--format", "json", env=env,
                              check=True).stdout)["services"]
    assert all(r["state"] == "RUNNING" for r in rows), rows
    return {r["name"]: r["member"] for r in rows}


def test_stack_placement_spreads_replicas_and_pins_a_service(sandbox: dict[str, Any], run_prefix: str,
                                                              tmp_path: Path) -> None:
    """web spread: true -> one replica per member (by name); db member: member2; plan is then all
    noop; an unknown member and placement off a cluster are refused (exit 2); down leaves nothing."""
    env, name = _env(sandbox), f"{run_prefix}p"
    path = _stack(tmp_path, name, "member2")
    sandbox["_names"].extend([f"{name}-db-1", *(f"{name}-web-{n}" for n in (1, 2, 3))])
    try:
        run_cli("up", "-f", str(path), env=env, check=True)
        assert _placed(env, path) == {f"{name}-db-1": "member2", f"{name}-web-1": "member1",
                                      f"{name}-web-2": "member2", f"{name}-web-3": "member3"}
        ops = json.loads(run_cli("plan", "-f", str(path), "--format", "json", env=env, check=True).stdout)
        assert {op["kind"] for op in ops} == {"noop"} and len(ops) == 4
        bad = run_cli("plan", "-f", str(_stack(tmp_path, name, "member9")), env=env)
        assert bad.returncode == 2 and ("services.db.placement.member: no cluster member 'member9'; "
                                        "online members: member1, member2, member3") in bad.stderr
        local = run_cli("--remote", "local", "plan", "-f", str(path), env=env)
        assert local.returncode == 2 and "is not a cluster; drop placement:" in local.stderr
    finally:
        down = run_cli("down", "-f", str(path), "--volumes", env=env)
    assert down.returncode == 0, down.stderr
    rows = json.loads(run_cli("list", "--format", "json", env=env, check=True).stdout)
    assert [r["name"] for r in rows if r["name"].startswith(name)] == []


@pytest.mark.slow
def test_stack_service_moved_to_another_member_is_recreated_there(sandbox: dict[str, Any], run_prefix: str,
                                                                 tmp_path: Path) -> None:
    """db's member changed in the file: plan says recreate (member changed), up puts it there."""
    env, name = _env(sandbox), f"{run_prefix}q"
    sandbox["_names"].extend([f"{name}-db-1", *(f"{name}-web-{n}" for n in (1, 2, 3))])
    moved = _stack(tmp_path, name, "member3")
    try:
        run_cli("up", "-f", str(_stack(tmp_path, name, "member2")), env=env, check=True)
        ops = json.loads(run_cli("plan", "-f", str(moved), "--format", "json", env=env, check=True).stdout)
        changed = [op for op in ops if op["kind"] != "noop"]
        assert changed[0]["kind"] == "recreate" and changed[0]["target"] == f"{name}-db-1"
        assert changed[0]["detail"]["reason"] == "member changed (member2 -> member3)"
        assert changed[0]["detail"]["member"] == "member3"
        assert {op["target"] for op in changed} == {f"{name}-db-1"}
        run_cli("up", "-f", str(moved), env=env, check=True)
        assert _placed(env, moved)[f"{name}-db-1"] == "member3"
    finally:
        assert run_cli("down", "-f", str(moved), "--volumes", env=env).returncode == 0
