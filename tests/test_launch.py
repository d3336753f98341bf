"""Integration: launch applies limits through LXD, and the kernel's cgroup files hold them."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from lxctool.host.cgroups import CgroupReader, payload_name

pytestmark = pytest.mark.integration
CG = Path("/sys/fs/cgroup")


def cg_file(name: str, controller: str, fname: str) -> str:
    """Read a container's v1 cgroup file directly (the test's own independent reference)."""
    if CgroupReader().layout == "v2":
        return (CG / payload_name(name) / fname).read_text().strip()
    return (CG / controller / payload_name(name) / fname).read_text().strip()


def v2() -> bool:
    return CgroupReader().layout == "v2"


def test_launch_sets_keys_and_kernel_values(lxd, containers) -> None:
    name, row = containers.launch("--cpu", "1-1", "--mem", "300MB", "--processes", "50",
                                  "--disk-read", "10MB", "--disk-write", "20MB")
    assert row["state"] == "RUNNING"
    inst = lxd.instance(name)
    cfg, dev = inst["config"], inst["devices"]
    assert cfg["limits.cpu"] == "1-1"
    assert cfg["limits.memory"] == "300MB"
    assert cfg["limits.processes"] == "50"
    assert cfg["security.privileged"] == "false" and cfg["security.nesting"] == "false"
    assert dev["root"]["limits.read"] == "10MB" and dev["root"]["limits.write"] == "20MB"
    # the kernel's values: 300MB is not a page multiple and is rounded down to 4 KiB pages
    if v2():
        assert cg_file(name, "memory", "memory.max") == "299999232"
        assert cg_file(name, "cpuset", "cpuset.cpus") == "1"
    else:
        assert cg_file(name, "memory", "memory.limit_in_bytes") == "299999232"
        assert cg_file(name, "cpuset", "cpuset.cpus") == "1"
        assert cg_file(name, "pids", "pids.max") == "50"
        rbps = cg_file(name, "blkio", "blkio.throttle.read_bps_device").split()
        wbps = cg_file(name, "blkio", "blkio.throttle.write_bps_device").split()
        assert rbps[1::2] == ["10000000"] and wbps[1::2] == ["20000000"]
    # its own IPv4 in the bridge subnet, and it answers the host
    subnet = ipaddress.ip_interface(lxd.network("lxctool0")["config"]["ipv4.address"]).network
    assert len(row["ipv4"]) == 1 and ipaddress.ip_address(row["ipv4"][0]) in subnet
    ping = subprocess.run(["ping", "-c", "1", "-W", "3", row["ipv4"][0]], capture_output=True)
    assert ping.returncode == 0


def test_fractional_cpu_is_a_hard_quota(lxd, containers) -> None:
    name, _ = containers.launch("--cpu", "0.5", "--mem", "128MiB", "--no-wait")
    assert lxd.instance(name)["config"]["limits.cpu.allowance"] == "50ms/100ms"
    if v2():
        assert cg_file(name, "cpu", "cpu.max") == "50000 100000"
    else:
        assert cg_file(name, "cpu", "cpu.cfs_quota_us") == "50000"
        assert cg_file(name, "cpu", "cpu.cfs_period_us") == "100000"
        assert cg_file(name, "memory", "memory.limit_in_bytes") == str(128 * 2**20)


def test_info_shows_the_kernel_value_not_the_config(lxd, containers) -> None:
    name, _ = containers.launch("--mem", "300MB", "--no-wait")
    path = (CG / payload_name(name) / "memory.max" if v2()
            else CG / "memory" / payload_name(name) / "memory.limit_in_bytes")
    path.write_text("250003456")  # behind LXD's back (lower: v1 refuses mem > mem+swap)
    data = json.loads(run_cli("info", name, "--format", "json", check=True).stdout)
    mem = next(r for r in data["limits"] if r["limit"] == "limits.memory")
    assert mem["configured"] == "300MB"
    assert mem["effective"] == 250003456
    assert mem["source"] == str(path)
    table = run_cli("info", name, check=True).stdout
    assert "250003456" in table


def test_live_limits_change_reaches_cgroup_with_same_init(lxd, containers) -> None:
    name, _ = containers.launch("--cpu", "1", "--mem", "256MB", "--processes", "40")
    pid_before = lxd.instance_state(name)["pid"]
    proc = run_cli("limits", name, "--mem", "200MB", "--cpu", "0.5", "--processes", "60", check=True)
    assert "200MB" in proc.stdout  # before/after table
    assert lxd.instance_state(name)["pid"] == pid_before
    if not v2():
        assert cg_file(name, "memory", "memory.limit_in_bytes") == "199999488"  # 200MB, page-rounded
        assert cg_file(name, "cpu", "cpu.cfs_quota_us") == "50000"
        assert cg_file(name, "pids", "pids.max") == "60"
    cfg = lxd.instance(name)["config"]
    assert cfg["limits.memory"] == "200MB" and cfg["limits.cpu.allowance"] == "50ms/100ms"
    assert "limits.cpu" not in cfg or cfg["limits.cpu"] == ""
    # unchanged values: nothing to do, exit 0
    again = run_cli("limits", name, "--mem", "200MB", check=True)
    assert "nothing to change" in again.stdout


def test_list_costs_one_request_for_1_or_10(lxd, containers) -> None:
    from lxctool.apply.lifecycle import list_rows
    from lxctool.lxd.client import Lxd

    first, _ = containers.launch("--no-wait", tag="l")
    client = Lxd()
    rows = list_rows(client)
    one = client.requests
    assert first in [r["name"] for r in rows]
    names = [containers.launch("--no-wait", tag="l")[0] for _ in range(9)]
    client2 = Lxd()
    rows = list_rows(client2)
    assert client2.requests == one == 1
    listed = {r["name"] for r in rows}
    assert {first, *names} <= listed
    cli_rows = json.loads(run_cli("list", "--format", "json", check=True).stdout)
    assert {first, *names} <= {r["name"] for r in cli_rows}


@pytest.fixture
def small_profile_cleanup(lxd, containers):
    """Remove the LXD profile made from profiles/small.yaml afterwards, if this test made it."""
    existed = {p["name"] for p in lxd.profiles()}
    yield
    containers.cleanup()
    for prof in lxd.profiles():
        if prof["name"].startswith("lxctool-small-") and prof["name"] not in existed and not prof.get("used_by"):
            lxd.delete_profile(prof["name"])


def test_profile_file_becomes_lxd_profile(lxd, small_profile_cleanup, containers) -> None:
    name, _ = containers.launch("--profile", "small", "--no-wait")
    pname = lxd.instance(name)["profiles"][-1]
    assert pname.startswith("lxctool-small-")  # named by content: lxctool-small-<hash>
    prof = lxd.profile(pname)
    assert prof["config"]["limits.memory"] == "256MB"
    if not v2():
        assert cg_file(name, "memory", "memory.limit_in_bytes") == "256000000"
    # an option overrides the profile
    name2, _ = containers.launch("--profile", "small", "--mem", "128MB", "--no-wait")
    if not v2():
        assert cg_file(name2, "memory", "memory.limit_in_bytes") == "128000000"


def test_exec_exit_codes(containers) -> None:
    name, _ = containers.launch("--no-wait")
    assert run_cli("exec", name, "--", "sh", "-c", "echo hi; exit 7").returncode == 7
    assert run_cli("exec", name, "--", "true").returncode == 0
    assert run_cli("exec", name, "--", "no-such-command").returncode == 127
    assert run_cli("exec", name, "--", "/etc/passwd").returncode == 126
    missing = run_cli("exec", containers.name("gone"), "--", "true")
    assert missing.returncode == 125 and "no container" in missing.stderr
    out = run_cli("exec", name, "--", "sh", "-c", "echo out; echo err >&2")
    assert out.stdout == "out\n" and out.stderr == "err\n"


def test_stop_start_restart_and_delete(lxd, containers) -> None:
    name, _ = containers.launch("--no-wait")
    assert json.loads(run_cli("stop", name, "--force", "--format", "json", check=True).stdout)[0]["state"] == "STOPPED"
    assert lxd.instance(name)["status"] == "Stopped"
    run_cli("start", name, check=True)
    assert lxd.instance(name)["status"] == "Running"
    run_cli("restart", name, "--force", check=True)
    assert lxd.instance(name)["status"] == "Running"
    run_cli("delete", name, check=True)
    assert lxd.instance(name) is None


def test_delete_refuses_foreign_containers(lxd, containers) -> None:
    name = containers.name("foreign")
    lxd.create_instance({"name": name, "source": {"type": "image", "alias": "busybox"},
                         "profiles": ["lxctool"], "type": "container"})
    refused = run_cli("delete", name)
    assert refused.returncode == 2 and "not created by lxctool" in refused.stderr
    assert lxd.instance(name) is not None
    run_cli("delete", name, "--force", check=True)
    assert lxd.instance(name) is None


def test_exec_streams_output_live(containers) -> None:
    import time

    from conftest import lxctool_bin

    name, _ = containers.launch("--no-wait")
    t0 = time.monotonic()
    proc = subprocess.Popen([lxctool_bin(), "exec", name, "--", "sh", "-c", "echo first; sleep 4; echo second"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "first\n"
    first_at = time.monotonic() - t0
    rest, _ = proc.communicate(timeout=30)
    assert rest == "second\n" and proc.returncode == 0
    assert first_at < 3.5  # seen before the command finished (it sleeps 4 s)


def test_net_in_shows_the_host_side_qdisc(lxd, containers) -> None:
    name, _ = containers.launch("--net-in", "10Mbit")
    data = json.loads(run_cli("info", name, "--format", "json", check=True).stdout)
    row = next(r for r in data["limits"] if r["limit"] == "eth0.limits.ingress")
    veth = lxd.instance_state(name)["network"]["eth0"]["host_name"]
    tc_text = subprocess.run(["tc", "class", "show", "dev", veth], capture_output=True, text=True).stdout
    assert "rate 10Mbit" in tc_text  # the independent reference
    assert row["configured"] == "10Mbit" and row["effective"] == 10_000_000 and veth in row["effective_text"]


def test_project_prefixed_cgroups_and_env_defaults(lxd, run_prefix) -> None:
    from lxctool.lxd.client import Lxd

    project = f"{run_prefix}proj"
    lxd.call("POST", "/1.0/projects", body={"name": project, "config": {
        "features.images": "false", "features.profiles": "false", "features.storage.volumes": "false"}})
    name = f"{run_prefix}-p1"
    env = {"LXCTOOL_PROJECT": project, "LXCTOOL_FORMAT": "json"}
    scoped = Lxd(project=project)
    try:
        row = json.loads(run_cli("launch", name, "--mem", "100MB", "--no-swap", env=env, check=True).stdout)
        assert row["name"] == name and scoped.instance(name) is not None
        assert lxd.instance(name) is None  # not in the default project
        assert scoped.instance(name)["config"]["limits.memory.swap"] == "false"
        cg = CG / "memory" / f"lxc.payload.{project}_{name}"
        if not v2():
            assert (cg / "memory.limit_in_bytes").read_text().strip() == "99999744"
            # LXD forbids swap through swappiness 0 (memsw is left uncapped)
            assert (cg / "memory.swappiness").read_text().strip() == "0"
        data = json.loads(run_cli("info", name, env=env, check=True).stdout)
        mem = next(r for r in data["limits"] if r["limit"] == "limits.memory")
        assert mem["effective"] == 99999744 and f"{project}_{name}" in mem["source"]
        swap = next(r for r in data["limits"] if r["limit"] == "limits.memory.swap")
        assert swap["configured"] == "false" and (v2() or swap["effective"]["swappiness"] == 0)
        assert name in {r["name"] for r in json.loads(run_cli("list", env=env, check=True).stdout)}
    finally:
        if scoped.instance(name) is not None:
            scoped.set_state(name, "stop", force=True)
            scoped.delete_instance(name)
        lxd.call("DELETE", f"/1.0/projects/{project}")
