"""Integration (real daemon): one 5-service busybox stack taken through up, a no-change up, a live
limit change, an image change, a removed service, a failing health check and down.

The tests run in file order on one stack (module fixture) to stay fast; everything labelled with
the stack's name is removed at the end even when a test fails.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import socket
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import run_cli

pytestmark = pytest.mark.integration


def free_subnet(lxd: Any) -> str:
    taken = []
    for net in lxd.networks():
        addr = (net.get("config") or {}).get("ipv4.address") or ""
        if "/" in addr:
            taken.append(ipaddress.IPv4Interface(addr).network)
    while True:
        cand = ipaddress.IPv4Network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(cand.overlaps(t) for t in taken):
            return f"{cand.network_address + 1}/24"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StackRun:
    """The stack file, its environment, and helpers to run lxctool on it."""

    def __init__(self, lxd: Any, name: str, folder: Path, subnet: str) -> None:
        self.lxd, self.name, self.folder = lxd, name, folder
        self.file = folder / "stack.yaml"
        self.env = {"LXCTOOL_STACK_STATE_DIR": str(folder / "state"), "LXCTOOL_RUN_DIR": str(folder / "run")}
        net = ipaddress.IPv4Interface(subnet).network
        self.ip = lambda n: str(net.network_address + n)
        self.port = free_port()
        self.doc: dict[str, Any] = {
            "name": name,
            "secrets": ["API_KEY"],
            "networks": {"back": {"subnet": subnet}},
            "services": {
                "db": {"image": "busybox", "limits": {"mem": "64MB", "processes": 60},
                       "networks": {"back": {"ip": self.ip(10)}}, "volumes": {"data": "/data"},
                       "healthcheck": {"command": ["test", "-d", "/data"], "interval": 0.2, "retries": 50}},
                "cache": {"image": "busybox", "networks": {"back": {}}},
                "api": {"image": "busybox", "replicas": 2,
                        "networks": {"back": {"ips": [self.ip(21), self.ip(22)]}},
                        "depends_on": {"db": {"condition": "healthy"}},
                        "environment": {"DB_HOST": "{{ services.db.ipv4 }}"},
                        "provision": {"files": [{"path": "/etc/api.conf", "mode": "0600",
                                                 "content": "db={{ services.db.ipv4 }}\nkey=${API_KEY}\n"},
                                                {"path": "/etc/api/peers", "source": "peers.tmpl"}],
                                      "commands": [["sh", "-c", "echo ready > /tmp/ready"]]},
                        "healthcheck": {"command": ["test", "-f", "/tmp/ready"], "interval": 0.2}},
                "worker": {"image": "busybox", "networks": {"back": {}}, "depends_on": ["cache"],
                           "environment": {"CACHE": "{{ services.cache.ipv4 }}"}},
                "front": {"image": "busybox", "networks": {"back": {}},
                          "depends_on": {"api": {"condition": "healthy"}},
                          "provision": {"commands": [["sh", "-c", "mkdir -p /www && echo hi from "
                                                      "{{ services.front.name }} > /www/index.html && httpd -p 80 -h /www"]]},
                          "healthcheck": {"http": {"port": 80, "path": "/index.html", "status": 200},
                                          "interval": 0.2, "retries": 50},
                          "publish": [f"127.0.0.1:{self.port}:80"]},
            },
        }
        (folder / "peers.tmpl").write_text("{% for n in services.api.names %}{{ n }} {% endfor %}${NOT_A_VAR:-}\n")
        self.write()

    def write(self) -> None:
        self.file.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    def cli(self, *args: str, check: bool = False) -> Any:
        return run_cli(*args, "-f", str(self.file), env=self.env, check=check, timeout=300)

    def plan(self) -> list[dict[str, Any]]:
        return json.loads(self.cli("plan", "--format", "json", check=True).stdout)

    def instances(self) -> dict[str, dict[str, Any]]:
        return {i["name"]: i for i in self.lxd.instances_full()
                if (i.get("config") or {}).get("user.lxctool.stack") == self.name}

    def owned(self) -> dict[str, list[str]]:
        """Every LXD object of this stack (by label or name)."""
        pools = [p["name"] for p in self.lxd.storage_pools()]
        return {
            "instances": sorted(self.instances()),
            "networks": sorted(n["name"] for n in self.lxd.networks() if n["name"].startswith(self.name)),
            "profiles": sorted(p["name"] for p in self.lxd.profiles() if p["name"].startswith(self.name)),
            "volumes": sorted(v["name"] for p in pools for v in self.lxd.storage_volumes(p)
                              if v["name"].startswith(self.name)),
        }

    def cleanup(self) -> None:
        self.cli("down", "--volumes")
        from lxctool.stacks.handlers import remove_instance

        for name in self.instances():
            remove_instance(self.lxd, name)
        for net in self.lxd.networks():
            if (net.get("config") or {}).get("user.lxctool.stack") == self.name:
                self.lxd.delete_network(net["name"])
        for pool in self.lxd.storage_pools():
            for vol in self.lxd.storage_volumes(pool["name"]):
                if (vol.get("config") or {}).get("user.lxctool.stack") == self.name:
                    self.lxd.delete_volume(pool["name"], vol["name"])


@pytest.fixture(scope="module")
def stack(lxd: Any, run_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRun]:
    run = StackRun(lxd, f"{run_prefix}s", tmp_path_factory.mktemp("stack"), free_subnet(lxd))
    run.before = run.owned()  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run.cleanup()


def cgroup(name: str, file: str) -> str:
    return Path(f"/sys/fs/cgroup/memory/lxc.payload.{name}/{file}").read_text().strip()


def test_up_brings_five_services_up_in_dependency_order(stack: StackRun) -> None:
    proc = stack.cli("up", "--parallel", "3")
    assert proc.returncode == 0, proc.stderr
    log = proc.stderr.splitlines()

    def at(text: str) -> int:
        return next(i for i, line in enumerate(log) if text in line)

    n = stack.name
    assert at(f"{n}-db-1 is healthy") < at(f"creating {n}-api-1") and at(f"{n}-db-1 is healthy") < at(f"creating {n}-api-2")
    assert max(at(f"{n}-api-1 is healthy"), at(f"{n}-api-2 is healthy")) < at(f"creating {n}-front-1")
    assert at(f"wait-ipv4 {n}-cache-1") < at(f"creating {n}-worker-1")
    insts = stack.instances()
    assert sorted(insts) == sorted(f"{n}-{s}" for s in ("db-1", "cache-1", "api-1", "api-2", "worker-1", "front-1"))
    assert all(i["status"] == "Running" for i in insts.values())
    assert cgroup(f"{n}-db-1", "memory.limit_in_bytes") == "64000000"
    cache_ip = insts[f"{n}-cache-1"]["state"]["network"]["eth0"]["addresses"][0]["address"]
    assert insts[f"{n}-worker-1"]["config"]["environment.CACHE"] == cache_ip
    assert insts[f"{n}-api-2"]["config"]["environment.DB_HOST"] == stack.ip(10)
    conf = stack.lxd.pull_file(f"{n}-api-2", "/etc/api.conf").decode()
    secret = (stack.folder / "state" / n / "secrets.env").read_text().split("API_KEY=")[1].split()[0]
    assert conf == f"db={stack.ip(10)}\nkey={secret}\n"
    peers = stack.lxd.pull_file(f"{n}-api-1", "/etc/api/peers").decode()
    assert peers == f"{n}-api-1 {n}-api-2 ${{NOT_A_VAR:-}}\n"
    assert secret not in json.dumps(list(insts.values())) and secret not in proc.stderr + proc.stdout
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"http://127.0.0.1:{stack.port}/index.html", timeout=5) as resp:
        assert resp.read().decode().strip() == f"hi from {n}-front-1"
    stack.lxd.exec(f"{n}-db-1", ["sh", "-c", "echo kept > /data/file"])


def test_plan_after_up_is_all_noop_and_second_up_writes_nothing(stack: StackRun) -> None:
    assert {op["kind"] for op in stack.plan()} == {"noop"}
    assert stack.cli("plan", "--check").returncode == 0
    ps = json.loads(stack.cli("ps", "--format", "json", check=True).stdout)
    rows = {r["name"]: r for r in ps["services"]}
    assert len(rows) == 6 and all(r["state"] == "RUNNING" for r in rows.values())
    db = rows[f"{stack.name}-db-1"]
    assert db["health"] == "healthy" and db["memory_limit_bytes"] == 64_000_000
    assert 0 < db["memory_bytes"] < 64_000_000 and db["memory_percent_of_limit"] > 0
    assert rows[f"{stack.name}-front-1"]["health"] == "healthy" and rows[f"{stack.name}-cache-1"]["health"] == "-"
    execd = run_cli("exec", "-f", str(stack.file), "api/2", "--", "hostname", env=stack.env)
    assert execd.returncode == 0 and execd.stdout.strip() == f"{stack.name}-api-2", execd.stderr
    verified = run_cli("verify", "-f", str(stack.file), "db", "--only", "processes", "--format", "json",
                       env=stack.env)
    assert verified.returncode == 0, verified.stderr
    findings = json.loads(verified.stdout)["findings"]
    assert [(f["name"], f["limit"], f["verdict"]) for f in findings] == \
        [(f"{stack.name}-db-1", "limits.processes", "ENFORCED")]
    proc = stack.cli("up")  # its time is the benchmark's business (noisy on a shared CI machine)
    assert proc.returncode == 0, proc.stderr
    assert "(0 writes)" in proc.stderr and "0 change(s)" in proc.stderr


def test_memory_change_is_one_live_update_with_the_same_init(stack: StackRun) -> None:
    db = f"{stack.name}-db-1"
    pid = stack.lxd.instance_state(db)["pid"]
    stack.doc["services"]["db"]["limits"]["mem"] = "96MB"
    stack.write()
    assert stack.cli("plan", "--check").returncode == 3
    changed = [op for op in stack.plan() if op["kind"] != "noop"]
    assert changed == [{"kind": "update-live", "target": db, "detail": {"limits.memory": "96MB"}}]
    assert stack.cli("up").returncode == 0
    assert cgroup(db, "memory.limit_in_bytes") == "95997952"  # 96*10^6 rounded down to the page
    assert stack.lxd.instance_state(db)["pid"] == pid


@pytest.fixture
def other_image(lxd: Any, stack: StackRun) -> Iterator[str]:
    """A busybox image with another fingerprint (same root, other metadata) under a test alias."""
    alias = f"{stack.name}-bb"
    fp = lxd.image_alias("busybox")["target"]
    src, dst = stack.folder / "bb.tar.gz", stack.folder / "bb2.tar.gz"
    lxd.export_image(fp, str(src))
    plain = stack.folder / "bb.tar"
    subprocess.run(["zstd", "-d", "-q", "-f", str(src), "-o", str(plain)], check=True)  # LXD exports zstd
    with tarfile.open(plain) as tin, tarfile.open(dst, "w:gz") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./") == "metadata.yaml" and data is not None:
                meta = data.read() + f"\n# variant {alias}\n".encode()
                member.size = len(meta)
                import io

                data = io.BytesIO(meta)
            tout.addfile(member, data)
    new_fp = lxd.import_image(str(dst))
    lxd.set_alias(alias, new_fp)
    try:
        yield alias
    finally:
        lxd.delete_alias(alias)
        lxd.delete_image(new_fp)


def test_image_change_recreates_and_the_volume_keeps_its_data(stack: StackRun, other_image: str) -> None:
    db = f"{stack.name}-db-1"
    stack.doc["services"]["db"]["image"] = other_image
    stack.write()
    changed = [op for op in stack.plan() if op["kind"] != "noop"]
    assert [(op["kind"], op["target"]) for op in changed] == [("recreate", db), ("start", db), ("wait-ipv4", db)]
    assert "image changed" in changed[0]["detail"]["reason"]
    assert stack.cli("up").returncode == 0
    assert stack.lxd.exec(db, ["cat", "/data/file"]).stdout.strip() == "kept"
    stack.doc["services"]["db"]["image"] = "busybox"  # back, so the test image can go
    stack.write()
    assert stack.cli("up").returncode == 0


def test_scale_adds_replicas_and_the_file_takes_them_back(stack: StackRun) -> None:
    n = stack.name
    proc = stack.cli("up", "--scale", "cache=2")
    assert proc.returncode == 0, proc.stderr
    assert {f"{n}-cache-1", f"{n}-cache-2"} <= set(stack.instances())
    assert [(op["kind"], op["target"]) for op in stack.plan() if op["kind"] != "noop"] == [("delete", f"{n}-cache-2")]
    assert stack.cli("up").returncode == 0 and f"{n}-cache-2" not in stack.instances()


def test_removed_service_is_deleted(stack: StackRun) -> None:
    del stack.doc["services"]["worker"]
    stack.write()
    assert [(op["kind"], op["target"]) for op in stack.plan() if op["kind"] != "noop"] == \
        [("delete", f"{stack.name}-worker-1")]
    assert stack.cli("up").returncode == 0
    assert f"{stack.name}-worker-1" not in stack.instances()


def test_failing_health_check_stops_dependents_with_exit_1(stack: StackRun) -> None:
    svc = stack.doc["services"]
    svc["db"]["healthcheck"] = {"command": ["sh", "-c", "echo no-data-yet; false"], "interval": 0.1, "retries": 3}
    svc["db"]["limits"]["mem"] = "80MB"  # a change, so db is checked again
    svc["late"] = {"image": "busybox", "depends_on": {"db": {"condition": "healthy"}}}
    stack.write()
    proc = stack.cli("up")
    assert proc.returncode == 1
    assert "services.db" in proc.stderr and "no-data-yet" in proc.stderr
    assert f"{stack.name}-late-1" not in stack.instances()


def test_down_removes_everything_but_the_volume(stack: StackRun) -> None:
    assert stack.cli("down").returncode == 0
    owned = stack.owned()
    assert owned["instances"] == [] and owned["networks"] == [] and owned["profiles"] == []
    assert owned["volumes"] == [f"{stack.name}-data"]
    path = Path(f"/var/lib/lxd/storage-pools/lxctool/custom/default_{stack.name}-data/file")
    assert path.read_text().strip() == "kept"
    assert (stack.folder / "state" / stack.name / "secrets.env").exists()
    assert stack.cli("down", "--volumes").returncode == 0
    assert stack.owned() == stack.before  # type: ignore[attr-defined]
    assert not (stack.folder / "state" / stack.name / "secrets.env").exists()
    assert not os.path.exists(path)
    assert not (stack.folder / "run" / "stacks").exists()  # nothing left under /run either
