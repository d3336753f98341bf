"""verify on the root disk: direct-I/O rates against limits.read/write, and the root size quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctool.verify.probes.disk import plan
from lxctool.core.units import parse_disk_rate
from conftest import run_cli, verify_findings


def test_transfer_plan_lasts_about_the_duration() -> None:
    assert plan(parse_disk_rate("10MB"), 2) == (2**20, 20)
    assert plan(parse_disk_rate("100iops"), 3) == (4096, 300)
    assert plan(parse_disk_rate("10GB"), 5) == (2**20, 512)  # capped


@pytest.mark.integration
def test_direct_io_rates_are_enforced_and_a_removed_throttle_is_not(lxd, containers) -> None:
    name, _ = containers.launch("--disk-read", "10MB", "--disk-write", "10MB")
    proc = run_cli("verify", name, "--only", "disk-io", "--duration", "2", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = verify_findings(proc)
    for key in ("root.limits.read", "root.limits.write"):
        assert rows[key]["verdict"] == "ENFORCED"
        assert 10 * 0.85 <= rows[key]["measured_value"] <= 10 * 1.15, rows[key]
        assert rows[key]["details"]["seconds"] >= 1.5
        assert "O_DIRECT" in rows[key]["evidence"] and "=10000000" in rows[key]["evidence"]
    # loosen the write throttle behind LXD's back: the device's own speed shows through
    throttle = Path(f"/sys/fs/cgroup/blkio/lxc.payload.{name}/blkio.throttle.write_bps_device")
    dev = throttle.read_text().split()[0]
    throttle.write_text(f"{dev} 0")
    proc = run_cli("verify", name, "--only", "disk-io", "--duration", "2", "--format", "json")
    assert proc.returncode == 3
    rows = verify_findings(proc)
    assert rows["root.limits.write"]["verdict"] == "NOT ENFORCED"
    assert rows["root.limits.write"]["measured_value"] > 11.5
    assert rows["root.limits.read"]["verdict"] == "ENFORCED"
    assert ".lxctool" not in lxd.exec(name, ["ls", "-a", "/"]).stdout


@pytest.mark.integration
def test_root_size_stops_the_write_on_the_btrfs_pool(lxd, containers) -> None:
    pool = lxd.storage_pool("lxctool")
    if pool["driver"] != "btrfs":
        pytest.skip("the set-up made a dir pool (no btrfs on this kernel)")
    name, _ = containers.launch("--disk", "64MB")
    proc = run_cli("verify", name, "--only", "disk-size", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = verify_findings(proc)["root.size"]
    assert row["verdict"] == "ENFORCED" and "quota exceeded" in row["evidence"].lower()
    assert 0 < row["details"]["written"] <= 64_000_000
    assert "btrfs" in row["evidence"]
    assert ".lxctool" not in lxd.exec(name, ["ls", "-a", "/"]).stdout


@pytest.mark.integration
def test_root_size_on_a_dir_pool_is_unsupported_naming_the_driver(lxd, containers, run_prefix) -> None:
    pool = f"vf-dir-{run_prefix}"
    name = containers.name("dir")
    lxd.call("POST", "/1.0/storage-pools", body={"name": pool, "driver": "dir", "config": {}})
    try:
        lxd.create_instance({"name": name, "source": {"type": "image", "alias": "busybox"},
                             "profiles": ["lxctool"],
                             "devices": {"root": {"type": "disk", "path": "/", "pool": pool,
                                                  "size": "16MB"}}})
        lxd.set_state(name, "start")
        proc = run_cli("verify", name, "--only", "disk-size", "--format", "json")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        row = verify_findings(proc)["root.size"]
        assert row["verdict"] == "UNSUPPORTED: storage driver dir does not enforce a root disk size"
        assert row["details"]["written"] > 16_000_000
        assert ".lxctool" not in lxd.exec(name, ["ls", "-a", "/"]).stdout
    finally:
        containers.cleanup()
        containers.names.clear()
        lxd.call("DELETE", f"/1.0/storage-pools/{pool}")
