"""Integration: a real HTTPS remote on loopback (this machine's daemon over core.https_address),
joined with a trust token, every data command through --remote, and the refusals.

The daemon's core.https_address is set on 127.0.0.1 only when it is unset, and unset again
after; the trust entry and the token this test made are removed, also when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration
CG = Path("/sys/fs/cgroup")


def lxc(*args: str) -> str:
    """Run the lxc client on the local daemon; its stdout."""
    return subprocess.run(["lxc", *args], capture_output=True, text=True, check=True).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def https_url(lxd: Any) -> Iterator[str]:
    """The local daemon's HTTPS address on loopback (set for the test only if it was unset)."""
    current = lxc("config", "get", "core.https_address").strip()
    if current:
        host, _, port = current.rpartition(":")
        host = host.strip("[]")
        if host not in ("", "0.0.0.0", "::") and not host.startswith("127."):
            pytest.skip(f"core.https_address is {current}, not reachable on loopback")
        yield f"https://{host if host.startswith('127.') else '127.0.0.1'}:{port}"
        return
    port = _free_port()
    lxc("config", "set", "core.https_address", f"127.0.0.1:{port}")
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        lxc("config", "unset", "core.https_address")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private lxctool config directory (client key pair, remotes) for this module."""
    return {"LXCTOOL_CONFIG_DIR": str(tmp_path_factory.mktemp("lxctool-config"))}


def _trust_entries() -> list[dict[str, Any]]:
    return json.loads(lxc("config", "trust", "list", "--format", "json"))


@pytest.fixture(scope="module")
def lab(https_url: str, cfg: dict[str, str], run_prefix: str) -> Iterator[str]:
    """Remote `lab` added with a fresh trust token; trust entry and token removed afterwards."""
    client = f"{run_prefix}-client"
    token = lxc("config", "trust", "add", "--name", client).strip().splitlines()[-1]
    try:
        proc = run_cli("remote", "add", "lab", https_url, "--token", token, "--accept-certificate", env=cfg)
        assert proc.returncode == 0, proc.stderr
        yield "lab"
    finally:
        for entry in _trust_entries():
            if entry.get("name") == client:
                lxc("config", "trust", "remove", entry["fingerprint"])
        # an unused token (the add failed) must not outlive the test; a used one is gone already
        subprocess.run(["lxc", "config", "trust", "revoke-token", client], capture_output=True)


def test_remote_add_pins_the_server_and_keeps_the_key_private(lab: str, cfg: dict[str, str],
                                                             https_url: str) -> None:
    """The pinned fingerprint is the server's own; key files are 0600; the server trusts our cert."""
    d = Path(cfg["LXCTOOL_CONFIG_DIR"])
    for f in ("client.key", "client.crt", "remotes.json"):
        assert stat.S_IMODE(os.stat(d / f).st_mode) == 0o600, f
    rows = json.loads(run_cli("remote", "list", "--format", "json", env=cfg, check=True).stdout)
    pinned = {r["name"]: r for r in rows}["lab"]
    server = json.loads(lxc("query", "/1.0"))["environment"]["certificate_fingerprint"]
    assert pinned["fingerprint"] == server and pinned["url"] == https_url
    import ssl

    from lxctool.lxd.transport import cert_fingerprint

    ours = cert_fingerprint(ssl.PEM_cert_to_DER_cert((d / "client.crt").read_text()))
    assert ours in {e["fingerprint"] for e in _trust_entries()}


def test_every_data_command_through_the_remote(lab: str, cfg: dict[str, str], lxd: Any,
                                               run_prefix: str) -> None:
    """launch, list, info, limits, exec, compare, delete over HTTPS act on the real daemon."""
    name = f"{run_prefix}-rmt1"
    env = {**cfg, "LXCTOOL_REMOTE": lab}
    try:
        launched = run_cli("launch", name, "--cpu", "1", "--mem", "256MB", "--format", "json", env=env)
        assert launched.returncode == 0, launched.stderr
        assert json.loads(launched.stdout)["state"] == "RUNNING"
        # the kernel holds what was asked over HTTPS (this remote's host is this machine)
        assert (CG / "memory" / f"lxc.payload.{name}" / "memory.limit_in_bytes").read_text().strip() == "256000000"
        rows = json.loads(run_cli("--remote", lab, "list", "--format", "json", env=cfg, check=True).stdout)
        assert name in {r["name"] for r in rows}
        info = json.loads(run_cli("info", name, "--format", "json", env=env, check=True).stdout)
        by = {r["limit"]: r for r in info["limits"]}
        assert by["limits.cpu"]["source"].startswith("exec in container")
        assert len(by["limits.cpu"]["effective"].split(",")) == 1 and "-" not in by["limits.cpu"]["effective"]
        assert info["usage"]["processes"] >= 1 and info["pid"] is None
        changed = run_cli("limits", name, "--mem", "300MB", "--format", "json", env=env)
        assert changed.returncode == 0, changed.stderr
        # the kernel rounds a memory limit down to whole pages
        assert (CG / "memory" / f"lxc.payload.{name}" / "memory.limit_in_bytes").read_text().strip() == \
            str(300000000 // os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PAGE_SIZE"))
        ex = run_cli("exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
        assert (ex.returncode, ex.stdout, ex.stderr) == (3, "out\n", "err\n")
        cmp_rows = json.loads(run_cli("compare", name, "--interval", "0.3", "--format", "json",
                                      env=env, check=True).stdout)
        assert cmp_rows[0]["kind"] == "host" and cmp_rows[0]["source"] == "api: /1.0/resources"
        assert cmp_rows[0]["memory_limit_bytes"] > 0
        assert [r["name"] for r in cmp_rows[1:]] == [name] and cmp_rows[1]["memory_limit_bytes"] == 300000000
        assert run_cli("delete", name, env=env).returncode == 0
        assert lxd.instance(name) is None
    finally:
        if lxd.instance(name) is not None:
            lxd.set_state(name, "stop", force=True)
            lxd.delete_instance(name)


def test_egress_that_would_need_the_remote_host_is_refused(lab: str, cfg: dict[str, str], lxd: Any,
                                                           run_prefix: str) -> None:
    """No tc police here, and the IFB fallback cannot run on a remote: exit 2, nothing kept."""
    name = f"{run_prefix}-rmt2"
    try:
        proc = run_cli("--remote", lab, "launch", name, "--net-out", "10Mbit", env=cfg)
        assert proc.returncode == 2, proc.stderr
        assert "--net-out" in proc.stderr and "IFB" in proc.stderr and "Traceback" not in proc.stderr
        assert lxd.instance(name) is None
    finally:
        if lxd.instance(name) is not None:
            lxd.delete_instance(name)


def test_a_changed_server_certificate_is_refused(lab: str, cfg: dict[str, str],
                                                 tmp_path: Path) -> None:
    """A pin that does not match: exit 2 naming both fingerprints, no request sent."""
    other = dict(cfg, LXCTOOL_CONFIG_DIR=str(tmp_path))
    src = Path(cfg["LXCTOOL_CONFIG_DIR"])
    for f in ("client.crt", "client.key"):
        (tmp_path / f).write_bytes((src / f).read_bytes())
    doc = json.loads((src / "remotes.json").read_text())
    real = doc["remotes"][lab]["fingerprint"]
    doc["remotes"][lab]["fingerprint"] = "ab" * 32
    (tmp_path / "remotes.json").write_text(json.dumps(doc))
    proc = run_cli("--remote", lab, "list", env=other)
    assert proc.returncode == 2
    assert "ab" * 32 in proc.stderr and real in proc.stderr and "Traceback" not in proc.stderr


def test_an_untrusted_client_is_refused(lab: str, cfg: dict[str, str], tmp_path: Path,
                                        https_url: str) -> None:
    """A fresh key pair the server never trusted: add without token and use both fail clearly."""
    other = dict(cfg, LXCTOOL_CONFIG_DIR=str(tmp_path))
    add = run_cli("remote", "add", "lab", https_url, "--accept-certificate", env=other)
    assert add.returncode == 1 and "does not trust this client" in add.stderr
    assert "Traceback" not in add.stderr
    src = json.loads((Path(cfg["LXCTOOL_CONFIG_DIR"]) / "remotes.json").read_text())
    (tmp_path / "remotes.json").write_text(json.dumps(src))  # pinned right, but our cert is new
    proc = run_cli("--remote", lab, "list", env=other)
    assert proc.returncode == 1 and "does not trust this client" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = run_cli("remote", "add", "lab2", https_url, "--token", "bm90LWEtdG9rZW4=", "--accept-certificate",
                  env=other)
    assert bad.returncode == 1 and "refused the token" in bad.stderr


def test_unknown_and_unreachable_remotes(cfg: dict[str, str], tmp_path: Path) -> None:
    """Unknown name: exit 2 naming it. Nothing listening: exit 1, one line. Never the socket."""
    proc = run_cli("--remote", "nosuch", "list", env=cfg)
    assert proc.returncode == 2 and "'nosuch'" in proc.stderr
    other = dict(cfg, LXCTOOL_CONFIG_DIR=str(tmp_path))
    (tmp_path / "remotes.json").write_text(json.dumps(
        {"default": "dead", "remotes": {"dead": {"url": f"https://127.0.0.1:{_free_port()}",
                                                 "fingerprint": "00" * 32}}}))
    proc = run_cli("list", env=other)  # the default remote, not the local socket
    assert proc.returncode == 1 and "remote dead" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    back = run_cli("remote", "switch", "local", env=other)
    assert back.returncode == 0 and run_cli("list", env=other).returncode == 0


def test_verify_through_the_remote(lab: str, cfg: dict[str, str], lxd: Any, run_prefix: str) -> None:
    """verify pushes past memory, processes and CPU inside and measures through the API."""
    name = f"{run_prefix}-rmt3"
    env = {**cfg, "LXCTOOL_REMOTE": lab}
    try:
        run_cli("launch", name, "--cpu", "1", "--mem", "64MB", "--processes", "20", "--disk-read", "10MB",
                env=env, check=True)
        proc = run_cli("verify", name, "--duration", "2", "--format", "json", env=env)
        assert proc.returncode == 0, proc.stderr
        found = {f["limit"]: f for f in json.loads(proc.stdout)["findings"]}
        assert set(found) == {"limits.cpu", "limits.memory", "limits.processes"}
        assert all(f["verdict"] == "ENFORCED" for f in found.values()), found
        assert found["limits.memory"]["measured_value"] <= 64000000
        assert "exited 137" in found["limits.memory"]["evidence"]  # the OOM killer ended the allocation
        assert found["limits.processes"]["measured_value"] <= 20
        assert "disk I/O rates can only be measured on that machine" in proc.stderr
    finally:
        if lxd.instance(name) is not None:
            lxd.set_state(name, "stop", force=True)
            lxd.delete_instance(name)
