"""verify: parsing (pure), bad input (CLI, nothing changed), and real probes on real containers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctool.core.errors import SpecError
from lxctool.verify.probes import failing
from lxctool.verify.probes.memory import configured_bytes
from lxctool.verify.runner import KINDS, parse_only
from conftest import run_cli, verify_findings

CG = Path("/sys/fs/cgroup")


def test_parse_only_accepts_kinds_and_defaults_to_all() -> None:
    assert parse_only(None) == tuple(KINDS)
    assert parse_only("memory, cpu,memory") == ("memory", "cpu")


def test_parse_only_names_every_unknown_item() -> None:
    with pytest.raises(SpecError) as exc:
        parse_only("cpu,ram,gpu")
    assert "'ram', 'gpu'" in exc.value.message and "disk-io" in exc.value.message


def test_memory_limit_in_bytes_follows_lxd_units() -> None:
    assert configured_bytes("128MB") == 128_000_000
    assert configured_bytes("128MiB") == 128 * 2**20
    assert 0 < configured_bytes("1%") < configured_bytes("2%")


def test_verdicts_that_fail_the_run() -> None:
    assert failing("NOT ENFORCED") and failing("UNSUPPORTED: dir")
    assert not failing("ENFORCED") and not failing("SOFT")


def _verify(name: str, *args: str) -> tuple[int, dict[str, dict]]:
    proc = run_cli("verify", name, "--format", "json", *args, timeout=180)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode, verify_findings(proc)


def _left_as_it_was(lxd, name: str) -> None:
    ps = lxd.exec(name, ["ps", "-o", "comm"]).stdout.split()[1:]
    assert sorted(set(ps) - {"ps"}) == ["init", "udhcpc"], ps
    assert lxd.exec(name, ["ls", "-a", "/"]).stdout.count(".lxctool") == 0


@pytest.mark.integration
def test_unknown_only_item_and_missing_container_exit_2_changing_nothing(lxd, containers, snapshot) -> None:
    name, _ = containers.launch("--cpu", "0.5")
    before = snapshot()
    bad = run_cli("verify", name, "--only", "cpu,ram")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "lxctool: error: --only: 'ram' is not a limit kind; use a comma-separated list of "
        "cpu, memory, processes, disk-io, disk-size, net"]
    missing = run_cli("verify", f"{containers.prefix}-nosuch")
    assert missing.returncode == 2 and "no container named" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert snapshot() == before


@pytest.mark.integration
def test_stopped_container_is_refused(lxd, containers) -> None:
    name, _ = containers.launch("--mem", "64MB")
    run_cli("stop", name, "--force", check=True)
    proc = run_cli("verify", name)
    assert proc.returncode == 2 and "is stopped" in proc.stderr and "lxctool start" in proc.stderr


@pytest.mark.integration
def test_hard_quota_memory_and_processes_are_enforced(lxd, containers) -> None:
    name, _ = containers.launch("--cpu", "0.25", "--mem", "128MB", "--no-swap", "--processes", "50")
    rc, rows = _verify(name, "--duration", "5")
    assert rc == 0, [(k, r["verdict"], r["measured"], r["evidence"]) for k, r in rows.items()]
    assert {k: r["verdict"] for k, r in rows.items()} == {
        "limits.cpu.allowance": "ENFORCED", "limits.memory": "ENFORCED", "limits.processes": "ENFORCED"}
    cpu = rows["limits.cpu.allowance"]
    assert 0.1 < cpu["measured_value"] <= 0.25 * 1.05
    assert cpu["details"]["nr_throttled"] > 0 and cpu["details"]["seconds"] >= 5
    mem = rows["limits.memory"]
    assert mem["details"]["oom_kills"] >= 1 and mem["details"]["asked"] >= 192_000_000
    assert 100 < mem["measured_value"] <= 128.0
    procs = rows["limits.processes"]
    assert 48 <= procs["measured_value"] <= 50 and procs["details"]["pids_max_events"] >= 1
    _left_as_it_was(lxd, name)


@pytest.mark.integration
def test_limits_loosened_behind_lxds_back_are_not_enforced(lxd, containers) -> None:
    name, _ = containers.launch("--cpu", "0.25", "--mem", "96MB", "--no-swap", "--processes", "30")
    payload = f"lxc.payload.{name}"
    (CG / "cpu" / payload / "cpu.cfs_quota_us").write_text("-1")
    (CG / "memory" / payload / "memory.limit_in_bytes").write_text(str(1024 * 2**20))
    (CG / "pids" / payload / "pids.max").write_text("max")
    rc, rows = _verify(name, "--duration", "2")
    assert rc == 3
    assert {k: r["verdict"] for k, r in rows.items()} == {
        "limits.cpu.allowance": "NOT ENFORCED", "limits.memory": "NOT ENFORCED",
        "limits.processes": "NOT ENFORCED"}
    assert rows["limits.cpu.allowance"]["measured_value"] > 0.5
    assert rows["limits.memory"]["details"]["oom_kills"] == 0
    assert rows["limits.memory"]["measured_value"] > 96 * 1.4
    assert rows["limits.processes"]["measured_value"] > 30
    _left_as_it_was(lxd, name)


@pytest.mark.integration
def test_soft_allowance_is_reported_soft_with_the_measurement(lxd, containers) -> None:
    name, _ = containers.launch("--cpu-allowance", "50%")
    proc = run_cli("verify", name, "--only", "cpu", "--duration", "2")
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("limits.cpu.allowance")][0]
    assert line.rstrip().endswith("SOFT") and "50%" in line and " CPU (" in line
    assert "cpu.shares" in line
