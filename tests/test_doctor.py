"""doctor reports this host's real state: daemon, pool driver, bridge, firewall rule, profile."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration


def test_doctor_on_a_set_up_host(lxd) -> None:
    proc = run_cli("doctor", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    assert rows["lxd daemon"]["status"] == "ok"
    driver = lxd.storage_pool("lxctool")["driver"]
    assert driver in rows["storage pool"]["detail"]
    assert rows["disk quotas"]["status"] == ("ok" if driver in ("btrfs", "zfs", "lvm", "ceph") else "limited")
    rule = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert ("lxctool isolation lxctool0" in rule) == (rows["isolation rule"]["status"] == "ok")
    assert rows["profile"]["status"] == "ok" and rows["default image"]["status"] == "ok"
    swap_kb = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("SwapTotal:")))
    assert (rows["host swap"]["status"] == "ok") == (swap_kb > 0)
