"""The teaching labs run end to end, show their points (exit 0) and leave nothing behind."""

from __future__ import annotations

import glob
import re
import subprocess

import pytest

from lxctool.host.shaping import ifb_name
from conftest import REPO


def _run_lab(script: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", str(REPO / "scripts" / script)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "FAILED" not in proc.stdout
    return proc


def _nothing_left(lxd, names: list[str], lab: str, networks_before: set[str]) -> None:
    for name in names:
        assert lxd.instance(name) is None, name
    assert not glob.glob(f"/tmp/lxctool-{lab}.*")
    assert {n["name"] for n in lxd.networks()} <= networks_before
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert all(ifb_name(n) not in links for n in names)


@pytest.mark.integration
def test_lab1_containers_vs_vm(lxd) -> None:
    networks = {n["name"] for n in lxd.networks()}
    proc = _run_lab("lab1-containers-vs-vm.sh")
    out = proc.stdout
    for point in ("the container sees far fewer processes than the host",
                  "the container's init is a host process that is PID 1 in its namespace",
                  "the containers reach each other across the bridge",
                  "memory limit 128MB in the kernel", "CPU use held at the 0.5 CPU quota"):
        assert f"ok: {point}" in out
    used = float(re.search(r"used ([\d.]+)% of one CPU", out).group(1))
    assert 25 <= used <= 53
    names = re.search(r"removed (\S+) and (\S+)", out).groups()
    _nothing_left(lxd, list(names), "lab1", networks)


@pytest.mark.integration
def test_lab2_limits(lxd) -> None:
    networks = {n["name"] for n in lxd.networks()}
    proc = _run_lab("lab2-limits.sh")
    out = proc.stdout
    quota_pool = lxd.storage_pool("lxctool")["driver"] != "dir"
    # cpu, memory, processes, disk read + write, root size (a dir pool cannot), net in + out
    assert out.count("verdict: ENFORCED") == (8 if quota_pool else 7)
    assert "ok: compare shows the count stopped at 30" in out
    peer = re.search(r"peer container was (\S+)", out).group(1)
    name = re.search(r"removed (\S+)", out).group(1)
    _nothing_left(lxd, [name, peer], "lab2", networks)
