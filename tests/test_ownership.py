"""Integration: one ownership rule for every command. Containers and networks made with plain `lxc`
are refused without --force (exit 2, one line naming the object, the object unchanged) and acted on
with it. `network delete --force` detaches by removing NICs, never by moving them onto lxctool0."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Iterator

import pytest
from conftest import run_cli
from test_network_lab import Lab, free_subnet, lab  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def lxc(*args: str) -> None:
    subprocess.run(["lxc", *args], check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture
def foreign(lxd: Any, run_prefix: str) -> Iterator[str]:
    """A stopped busybox container created with plain `lxc` (no lxctool marker); removed after."""
    name = f"{run_prefix}-foreign"
    lxc("init", "busybox", name, "-p", "lxctool")
    try:
        yield name
    finally:
        subprocess.run(["lxc", "delete", "--force", name], capture_output=True)


def record(lxd: Any, name: str) -> tuple[Any, ...]:
    """What a refused command must not change: state, config, devices, profiles."""
    inst = lxd.instance(name)
    return (inst["status"], inst["config"], inst["devices"], inst["profiles"])


def refused(lxd: Any, name: str, *args: str) -> None:
    before = record(lxd, name)
    proc = run_cli(*args)
    assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and repr(name) in lines[0] and "not created by lxctool" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert record(lxd, name) == before


def test_start_stop_restart_limits_delete_need_force(lxd: Any, foreign: str) -> None:
    refused(lxd, foreign, "start", foreign)
    run_cli("start", foreign, "--force", check=True)
    assert lxd.instance(foreign)["status"] == "Running"

    refused(lxd, foreign, "start", foreign)  # already running: still refused, not "nothing to do"
    refused(lxd, foreign, "limits", foreign, "--mem", "128MB")
    refused(lxd, foreign, "limits", foreign, "--mem", "128MB", "--dry-run")
    run_cli("limits", foreign, "--mem", "128MB", "--force", check=True)
    assert lxd.instance(foreign)["config"]["limits.memory"] == "128MB"
    cgroup = json.loads(run_cli("info", foreign, "--format", "json", check=True).stdout)  # reads need no --force
    mem = next(r for r in cgroup["limits"] if r["limit"] == "limits.memory")
    assert mem["effective"] == 128_000_000
    assert run_cli("exec", foreign, "--", "true").returncode == 0  # exec: the user's own command

    pid = lxd.instance_state(foreign)["pid"]
    refused(lxd, foreign, "restart", foreign)
    run_cli("restart", foreign, "--force", check=True)
    assert lxd.instance(foreign)["status"] == "Running" and lxd.instance_state(foreign)["pid"] != pid

    refused(lxd, foreign, "stop", foreign)
    run_cli("stop", foreign, "--force", check=True)
    assert lxd.instance(foreign)["status"] == "Stopped"

    refused(lxd, foreign, "delete", foreign)
    proc = run_cli("launch", foreign)  # a launch never takes over an existing name
    assert proc.returncode == 2 and "already taken" in proc.stderr
    run_cli("delete", foreign, "--force", check=True)
    assert lxd.instance(foreign) is None


def test_network_made_with_lxc_needs_force(lxd: Any, run_prefix: str) -> None:
    name = f"n{run_prefix}fx"
    subnet = free_subnet(lxd)
    lxc("network", "create", name, f"ipv4.address={subnet.network_address + 1}/24", "ipv4.nat=false",
        "ipv6.address=none")
    try:
        before = lxd.network(name)["config"]
        proc = run_cli("network", "delete", name)
        assert proc.returncode == 2 and proc.stdout == "", proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"network {name!r} was not created by lxctool" in lines[0]
        assert lxd.network(name)["config"] == before
        run_cli("network", "delete", name, "--force", check=True)
        assert lxd.network(name) is None
    finally:
        subprocess.run(["lxc", "network", "delete", name], capture_output=True)


def nics(lxd: Any, name: str) -> dict[str, str]:
    """The container's NICs (as LXD expands them) -> network."""
    devs = lxd.instance(name)["expanded_devices"]
    return {d: v.get("network", "") for d, v in devs.items() if v.get("type") == "nic"}


def test_network_delete_force_removes_nics_never_moves_them(lab: Lab, containers: Any, lxd: Any) -> None:  # noqa: F811
    net, _ = lab.network("d")
    only, _ = containers.launch("--network", net, tag="only")              # eth0 on net (masks the profile's)
    both, _ = containers.launch("--network", "lxctool0", "--network", net, tag="both")  # eth1 on net
    assert nics(lxd, only) == {"eth0": net} and nics(lxd, both) == {"eth0": "lxctool0", "eth1": net}
    before = {c: record(lxd, c) for c in (only, both)}
    proc = run_cli("network", "delete", net)
    assert proc.returncode == 2 and "is used by" in proc.stderr and "--force" in proc.stderr
    assert lxd.network(net) is not None and {c: record(lxd, c) for c in (only, both)} == before

    proc = run_cli("network", "delete", net, "--force")
    assert proc.returncode == 0, proc.stderr
    assert f"detached {only} from {net}: removed its NIC eth0" in proc.stderr
    assert f"detached {both} from {net}: removed its NIC eth1" in proc.stderr
    assert lxd.network(net) is None
    assert nics(lxd, only) == {}                      # not moved onto lxctool0
    assert nics(lxd, both) == {"eth0": "lxctool0"}    # its other NIC kept
    assert lxd.instance(only)["status"] == "Running" and lxd.instance(both)["status"] == "Running"
