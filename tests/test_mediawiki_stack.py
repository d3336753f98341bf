"""The MediaWiki stack (examples/mediawiki/stack.yaml) end to end, on the real daemon, and the
service images it is made of, each answering on its own address.

One `up` (images built on first use), then, through the load balancer on 127.0.0.1:8080: the
main page answers 200 from both web replicas (X-Served-By), a page written through the API on
one replica reads back through the other, the page survives `down` / `up` (database volume
kept), and InfluxDB holds the monitor's samples of all five containers.
The stack runs under this test run's own name; everything it made is removed, also on failure.
Slow: scripts/lab3-mediawiki-stack.sh end to end.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, lxctool_bin, run_cli

SERVICES = ("database-1", "web-1", "web-2", "loadbalancer-1", "metrics-1")
UP_TIMEOUT = 1200  # a first run builds the mariadb, mediawiki, nginx and influxdb images


def request(method: str, host: str, port: int, path: str, form: dict[str, str] | None = None
         ) -> tuple[int, str, str]:
    """(status, X-Served-By, body) of one request; http.client so no proxy is ever involved."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    body = urllib.parse.urlencode(form) if form else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    out = (resp.status, resp.getheader("X-Served-By") or "", resp.read().decode())
    conn.close()
    return out


def wiki(path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
    """A request to the stack's published load balancer."""
    return request("POST" if form else "GET", "127.0.0.1", 8080, path, form)


def read_page(title: str, tries: int = 4) -> dict[str, str]:
    """{replica: raw text} for the page, read through the balancer until both replicas served it."""
    seen: dict[str, str] = {}
    for _ in range(tries):
        status, served_by, text = wiki(f"/index.php?title={title}&action=raw")
        if status == 200:
            seen[served_by] = text
    return seen


def cleanup(lxd: Any, stack: str, stack_file: Path) -> None:
    """down --volumes, then remove whatever of this stack is left (when down failed or is missing)."""
    run_cli("down", "-f", str(stack_file), "--volumes", timeout=300)
    for pidfile in Path(f"/run/lxctool/stacks/{stack}").glob("*.pid"):
        try:  # the stack's monitor, started by this test's `up`
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (ValueError, OSError):
            pass
    for inst in lxd.instances_full():
        if inst["name"].startswith(f"{stack}-"):
            run_cli("delete", inst["name"], "--force")
    for net in lxd.networks():
        if (net.get("config") or {}).get("user.lxctool.stack") == stack or net["name"].startswith(f"{stack}-"):
            run_cli("network", "delete", net["name"], "--force")
    for vol in lxd.storage_volumes("lxctool"):
        if vol["name"].startswith(f"{stack}-") and vol.get("type") == "custom":
            lxd.call("DELETE", f"/1.0/storage-pools/lxctool/volumes/custom/{vol['name']}")
    shutil.rmtree(f"/var/lib/lxctool/stacks/{stack}", ignore_errors=True)
    shutil.rmtree(f"/run/lxctool/stacks/{stack}", ignore_errors=True)  # its lock file
    Path(f"/var/log/lxctool-monitor-{stack}.log").unlink(missing_ok=True)


def example_copy(tmp_path: Path, filename: str, name: str, stack: str) -> Path:
    """examples/mediawiki copied into tmp_path, FILENAME's `name: NAME` renamed to this run's STACK."""
    shutil.copytree(REPO / "examples" / "mediawiki", tmp_path, dirs_exist_ok=True)
    path = tmp_path / filename
    text = path.read_text()
    assert f"\nname: {name}\n" in text
    path.write_text(text.replace(f"\nname: {name}\n", f"\nname: {stack}\n"))
    return path


@pytest.mark.integration
def test_mediawiki_stack_end_to_end(lxd: Any, run_prefix: str, tmp_path: Path) -> None:
    stack = f"{run_prefix}-mw"
    stack_file = example_copy(tmp_path, "stack.yaml", "mediawiki", stack)
    web = {f"{stack}-web-1", f"{stack}-web-2"}
    try:
        run_cli("up", "-f", str(stack_file), check=True, timeout=UP_TIMEOUT)

        answers = [wiki("/") for _ in range(4)]
        assert [a[0] for a in answers] == [200] * 4, answers
        assert {a[1] for a in answers} == web
        assert all("Lab Wiki" in a[2] for a in answers)

        content = f"written by {stack} at {time.time()}"
        _, token_json = wiki("/api.php?action=query&meta=tokens&format=json")[1:]
        token = json.loads(token_json)["query"]["tokens"]["csrftoken"]
        status, writer, reply = wiki("/api.php", {"action": "edit", "title": "Stack_test", "text": content,
                                                  "token": token, "format": "json"})
        assert status == 200 and json.loads(reply)["edit"]["result"] == "Success", reply
        assert writer in web
        assert read_page("Stack_test") == {name: content for name in web}  # the other replica too

        run_cli("down", "-f", str(stack_file), check=True, timeout=300)
        assert not [i["name"] for i in lxd.instances_full() if i["name"].startswith(f"{stack}-")]
        run_cli("up", "-f", str(stack_file), check=True, timeout=600)
        assert read_page("Stack_test") == {name: content for name in web}

        metrics = lxd.instance_state(f"{stack}-metrics-1")["network"]["eth0"]["addresses"]
        influx = next(a["address"] for a in metrics if a["family"] == "inet")
        query = urllib.parse.urlencode({"db": "lxd", "q": 'SELECT count(memory_bytes) FROM lxctool GROUP BY "name"'})
        names: set[str] = set()
        for _ in range(30):  # the monitor samples every 5 s
            series = json.loads(request("GET", influx, 8086, f"/query?{query}")[2])["results"][0].get("series", [])
            names = {s["tags"]["name"] for s in series}
            if {f"{stack}-{s}" for s in SERVICES} <= names:
                break
            time.sleep(1)
        assert {f"{stack}-{s}" for s in SERVICES} <= names
    finally:
        cleanup(lxd, stack, stack_file)
    assert not [i["name"] for i in lxd.instances_full() if i["name"].startswith(f"{stack}-")]


@pytest.mark.integration
def test_service_images_answer_on_their_own_address(lxd: Any, containers: Any, run_prefix: str) -> None:
    """mariadb (data on a fresh volume), influxdb and mediawiki, as the stack uses them."""
    for image in ("mariadb", "influxdb", "mediawiki"):
        run_cli("image", "build", image, check=True, timeout=UP_TIMEOUT)
    db, db_row = containers.launch("--image", "mariadb", "--mem", "512MB", tag="db")
    volume = f"{run_prefix}-dbvol"
    lxd.call("POST", "/1.0/storage-pools/lxctool/volumes", body={"name": volume, "type": "custom", "config": {}})
    try:
        devices = {**lxd.instance(db)["devices"],
                   "data": {"type": "disk", "pool": "lxctool", "source": volume, "path": "/var/lib/mysql"}}
        lxd.patch_instance(db, {"devices": devices})
        run_cli("restart", db, check=True)
        for _ in range(120):  # the empty volume is initialised as mariadb starts
            if run_cli("exec", db, "--", "mariadb", "-N", "-e", "SELECT 1").returncode == 0:
                break
            time.sleep(0.5)
        assert run_cli("exec", db, "--", "test", "-d", "/var/lib/mysql/mysql").returncode == 0
        with socket.create_connection((db_row["ipv4"][0], 3306), timeout=10) as conn:
            assert b"MariaDB" in conn.recv(256)  # the server greeting, on the container's address

        influx, influx_row = containers.launch("--image", "influxdb", tag="influx")
        assert request("GET", influx_row["ipv4"][0], 8086, "/ping")[0] == 204

        wiki_name, wiki_row = containers.launch("--image", "mediawiki", tag="wiki")
        status, served_by, _ = request("GET", wiki_row["ipv4"][0], 80, "/index.php")
        assert (status, served_by) == (200, wiki_name)
    finally:
        containers.cleanup()
        lxd.call("DELETE", f"/1.0/storage-pools/lxctool/volumes/custom/{volume}")


@pytest.mark.integration
@pytest.mark.slow
def test_lab3_walks_the_stack_and_leaves_nothing(lxd: Any) -> None:
    """scripts/lab3-mediawiki-stack.sh shows every point (exit 0) and removes its stack."""
    proc = subprocess.run(["bash", str(REPO / "scripts" / "lab3-mediawiki-stack.sh")], capture_output=True,
                          text=True, timeout=UP_TIMEOUT + 600, env={**os.environ, "LXCTOOL": lxctool_bin()})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "FAILED" not in proc.stdout
    for point in ("both replicas answered, in turn", "the page survived recreating the web tier",
                  "...without a restart (same init PID)", "verify proves every limit of every service"):
        assert f"ok: {point}" in proc.stdout
    stack = re.search(r"removed stack (\S+)", proc.stdout).group(1)  # type: ignore[union-attr]
    assert not [i["name"] for i in lxd.instances_full() if i["name"].startswith(f"{stack}-")]
    assert not [v["name"] for v in lxd.storage_volumes("lxctool") if v["name"].startswith(f"{stack}-")]
