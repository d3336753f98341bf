"""Integration: observe -> plan -> apply against the real daemon. A dry run changes nothing (the
net-out hook file and the address lock included); update-live keeps the container's init;
a re-plan of what was just launched is a noop, decided from the recorded user.lxctool.hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import run_cli
from test_network_lab import Lab, free_subnet, lab  # noqa: F401  (fixture)

from lxctool.core.desired import desired_launch
from lxctool.core.plan import HASH_KEY, plan
from lxctool.core.spec import LaunchSpec
from lxctool.host import shaping
from lxctool.host.caps import HostCapabilities
from lxctool.observe.state import observe, want_launch

pytestmark = pytest.mark.integration


def ours(snap: dict[str, Any], prefix: str, names: list[str]) -> dict[str, Any]:
    """The snapshot parts this test's commands could touch; other helpers' concurrent tests
    change other containers, networks and images at the same time."""
    ifbs = {shaping.ifb_name(n) for n in names}
    mine = (prefix, "lxctool0", *ifbs)
    return {
        "instances": [i for i in snap["instances"] if i[0].startswith(prefix)],
        "profiles": [p for p in snap["profiles"] if p[0].startswith(("lxctool", prefix))],
        "networks": [n for n in snap["networks"] if n[0].startswith(("lxctool0", "n" + prefix))],
        "images": [i for i in snap["images"] if "busybox" in i[1]],
        "volumes": [v for v in snap["volumes"] if v[1].startswith(prefix)],
        "iptables": [ln for ln in snap["iptables"].splitlines() if any(m in ln for m in mine)],
        "nft": [ln for ln in snap["nft"].splitlines() if any(m in ln for m in mine)],
        "qdiscs": [ln for ln in snap["qdiscs"].splitlines() if any(m in ln for m in ifbs)],
        "links": [n for n in snap["links"] if n.startswith(mine)],
        # the stacks helper's lock files come and go with its own tests
        "files": [f for f in snap["files"] if not f[0].startswith("/run/lxctool/stacks")],
    }


@pytest.fixture
def hook_moved_away(tmp_path: Path) -> Any:
    """The net-out hook file is missing for the test and put back (as it was) afterwards."""
    saved = tmp_path / "net-out"
    existed = shaping.HOOK_PATH.exists()
    if existed:
        shutil.move(str(shaping.HOOK_PATH), saved)
    try:
        yield
    finally:
        if existed:
            shutil.move(str(saved), shaping.HOOK_PATH)


def test_dry_runs_change_nothing_hook_and_lock_included(lxd: Any, containers: Any, lab: Lab, run_prefix: str,
                                                       snapshot: Callable[[], dict[str, Any]],
                                                       hook_moved_away: Any) -> None:
    name, _ = containers.launch("--mem", "128MB", "--no-wait", tag="dry")
    net, subnet = lab.network("d")
    x = containers.name("x")
    before = ours(snapshot(), run_prefix, [name, x])
    assert not shaping.HOOK_PATH.exists()

    proc = run_cli("launch", "--dry-run", "--net-out", "10Mbit", x)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"install-hook {shaping.HOOK_PATH}: net-out shaping hook missing or outdated"
    ops = json.loads(run_cli("launch", "--dry-run", "--net-out", "10Mbit", x, "--format", "json", check=True).stdout)
    assert [o["kind"] for o in ops] == ["install-hook", "create", "start", "wait-ipv4"]
    fixed = str(subnet.network_address + 40)
    proc = run_cli("launch", "--dry-run", x, "--network", net, "--ip", fixed, check=True)
    assert f"wait-ipv4 {x} (ipv4={fixed}" in proc.stdout
    other = free_subnet(lxd)
    for args, first in ((["limits", name, "--mem", "200MB", "--net-out", "5Mbit"], "install-hook"),
                        (["stop", name], f"stop {name}"), (["restart", name], f"restart {name}"),
                        (["delete", name], f"delete {name}"),
                        (["network", "create", f"n{run_prefix}z", "--subnet", f"{other.network_address + 1}/24"],
                         f"ensure-network n{run_prefix}z")):
        proc = run_cli(*args, "--dry-run")
        assert proc.returncode == 0 and proc.stdout.startswith(first), (args, proc.stdout, proc.stderr)

    assert not shaping.HOOK_PATH.exists()
    assert ours(snapshot(), run_prefix, [name, x]) == before
    assert lxd.instance(x) is None


def test_dry_run_takes_no_address_lock(lab: Lab, containers: Any, tmp_path: Path) -> None:
    net, subnet = lab.network("k")
    run_dir = tmp_path / "run"
    env = {"LXCTOOL_RUN_DIR": str(run_dir)}
    proc = run_cli("launch", "--dry-run", containers.name(), "--network", net,
                   "--ip", str(subnet.network_address + 9), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not run_dir.exists()


def test_update_live_keeps_init_and_records_the_hash(lxd: Any, containers: Any) -> None:
    name, _ = containers.launch("--cpu", "1", "--mem", "128MB", "--processes", "40")
    pid = lxd.instance_state(name)["pid"]
    hash_before = lxd.instance(name)["config"][HASH_KEY]
    ops = json.loads(run_cli("limits", name, "--mem", "200MB", "--processes", "60", "--dry-run",
                             "--format", "json", check=True).stdout)
    assert [(o["kind"], o["detail"]) for o in ops] == [
        ("update-live", {"limits.memory": "200MB", "limits.processes": "60"})]
    run_cli("limits", name, "--mem", "200MB", "--processes", "60", check=True)
    assert lxd.instance_state(name)["pid"] == pid
    cfg = lxd.instance(name)["config"]
    assert cfg["limits.memory"] == "200MB" and cfg[HASH_KEY] != hash_before
    again = json.loads(run_cli("limits", name, "--mem", "200MB", "--dry-run", "--format", "json", check=True).stdout)
    assert [o["kind"] for o in again] == ["noop"]


def test_replan_of_a_launched_container_is_noop(lxd: Any, containers: Any) -> None:
    name, _ = containers.launch("--cpu", "1", "--mem", "128MB", "--disk-read", "10MB", "--no-wait")
    spec = LaunchSpec(name=name, limits=containers_limits(), wait=False)
    caps = HostCapabilities.probe()
    observed = observe(lxd, caps, want_launch(spec))
    desired = desired_launch(spec, observed, allow_existing=True)
    assert lxd.instance(name)["config"][HASH_KEY] == desired.instances[0].config_hash()
    assert [op.kind.value for op in plan(desired, observed)] == ["noop"]
    run_cli("stop", name, "--force", check=True)
    observed = observe(lxd, caps, want_launch(spec))
    assert [op.describe() for op in plan(desired, observed)] == [f"start {name}"]


def containers_limits(**raw: str) -> Any:
    """Limits as the CLI parses them (default: those of the re-plan test's launch)."""
    from lxctool.core.spec import parse_limits

    errors: list[str] = []
    limits = parse_limits(raw or {"cpu": "1", "mem": "128MB", "disk-read": "10MB"}, str, errors)
    assert not errors
    return limits


def test_a_container_that_cannot_start_is_removed_again(lxd: Any, containers: Any) -> None:
    """The executor undoes its create when start fails: here the published port is taken in between."""
    import socket

    from lxctool.apply.launch import apply_launch, prepare_launch
    from lxctool.core.errors import LxdError
    from lxctool.core.nics import Publish

    name = containers.name("half")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = prepare_launch(lxd, LaunchSpec(name=name, wait=False), HostCapabilities.probe(),
                            publish=[Publish("127.0.0.1", port, 80)])
    assert [op.kind.value for op in launch.ops] == ["create", "start"]
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(LxdError, match="address already in use"):
            apply_launch(lxd, launch)
    assert lxd.instance(name) is None


def test_a_non_live_change_recreates_and_a_live_one_patches(lxd: Any, containers: Any) -> None:
    """What stacks rely on: plan + apply converge an existing container either way."""
    from dataclasses import replace

    from lxctool.apply.executor import apply

    name, _ = containers.launch("--mem", "128MB", "--no-wait")
    spec = LaunchSpec(name=name, limits=containers_limits(mem="128MB"), wait=False)
    caps = HostCapabilities.probe()
    observed = observe(lxd, caps, want_launch(spec))
    desired = desired_launch(spec, observed, allow_existing=True)
    inst = desired.instances[0]
    nested = replace(inst, config={**inst.config, "security.nesting": "true"})
    ops = plan(replace(desired, instances=(nested,)), observed)
    assert [(op.kind.value, op.reason) for op in ops] == [
        ("recreate", "security.nesting changed (not changeable on a running container)"), ("start", "")]
    apply(lxd, ops)
    after = lxd.instance(name)
    assert after["status"] == "Running" and after["config"]["security.nesting"] == "true"
    assert after["config"][HASH_KEY] == nested.config_hash()
    pid = lxd.instance_state(name)["pid"]
    roomier = replace(nested, config={**nested.config, "limits.memory": "200MB"})
    ops = plan(replace(desired, instances=(roomier,)), observe(lxd, caps, want_launch(spec)))
    assert [op.describe() for op in ops] == [f"update-live {name} (limits.memory=200MB)"]
    apply(lxd, ops)
    assert lxd.instance_state(name)["pid"] == pid
    assert lxd.instance(name)["config"][HASH_KEY] == roomier.config_hash()
    assert [op.kind.value for op in plan(replace(desired, instances=(roomier,)),
                                         observe(lxd, caps, want_launch(spec)))] == ["noop"]
