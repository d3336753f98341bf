"""Bad input: one clear line per problem naming the field, exit 2, and the host exactly as it was."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.integration


def assert_refused(proc: subprocess.CompletedProcess[str], field: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("lxctool: error: ", "lxctool: hint: ")) for ln in lines), lines
    assert any(field in ln for ln in lines), (field, lines)
    assert proc.stdout == ""


@pytest.mark.parametrize("args,field", [
    (["--mem", "512XB"], "--mem"),
    (["--mem", "-5MB"], "--mem"),
    (["--cpu", "-1"], "--cpu"),
    (["--cpu", "0"], "--cpu"),
    (["--cpu", "99"], "--cpu"),
    (["--cpu", "0-7"], "--cpu"),
    (["--cpu-allowance", "300ms/100ms"], "--cpu-allowance"),
    (["--cpu", "0.5", "--cpu-allowance", "20ms/100ms"], "--cpu-allowance"),
    (["--processes", "0"], "--processes"),
    (["--disk-read", "fast"], "--disk-read"),
    (["--net-in", "10MB"], "--net-in"),
    (["--ip", "10.99.0.5"], "--ip"),
    (["--ip", "10.191.0.1"], "--ip"),
    (["--ip", "not-an-ip"], "--ip"),
    (["--image", "no-such-image"], "--image"),
    (["--profile", "no-such-profile"], "--profile"),
    (["--network", "no-such-net"], "--network"),
])
def test_bad_launch_options_change_nothing(args, field, containers, snapshot) -> None:
    before = snapshot()
    proc = run_cli("launch", containers.name("bad"), *args)
    assert_refused(proc, field)
    assert snapshot() == before


@pytest.mark.parametrize("name", ["web_1", "a" * 64, "1web", "web-"])
def test_bad_names_change_nothing(name, snapshot) -> None:
    before = snapshot()
    assert_refused(run_cli("launch", name), "NAME")
    assert snapshot() == before


def test_several_errors_reported_at_once(containers) -> None:
    proc = run_cli("launch", containers.name("bad"), "--mem", "512XB", "--cpu", "0", "--processes", "0")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 3


def test_name_taken_and_address_in_use(lxd, containers, snapshot) -> None:
    name, row = containers.launch()
    before = snapshot()
    assert_refused(run_cli("launch", name), "NAME")
    assert_refused(run_cli("launch", containers.name("dup"), "--ip", row["ipv4"][0]), "--ip")
    assert snapshot() == before


def test_disk_size_refused_on_a_pool_that_ignores_it(lxd, containers, run_prefix, snapshot) -> None:
    pool, profile = f"{run_prefix}dir", f"{run_prefix}-dirroot"
    lxd.call("POST", "/1.0/storage-pools", body={"name": pool, "driver": "dir", "config": {}})
    try:
        lxd.put_profile(profile, {}, {"root": {"type": "disk", "path": "/", "pool": pool}})
        try:
            before = snapshot()
            proc = run_cli("launch", containers.name("dir"), "--profile", profile, "--disk", "100MB")
            assert_refused(proc, "--disk")
            assert "dir" in proc.stderr and "doctor" in proc.stderr
            assert snapshot() == before
        finally:
            lxd.delete_profile(profile)
    finally:
        lxd.call("DELETE", f"/1.0/storage-pools/{pool}")


def test_limits_on_missing_container(snapshot) -> None:
    before = snapshot()
    assert_refused(run_cli("limits", "no-such-container-xyz", "--mem", "1GB"), "NAME")
    assert_refused(run_cli("info", "no-such-container-xyz"), "NAME")
    assert_refused(run_cli("limits", "no-such-container-xyz", "--mem", "1XB"), "--mem")
    assert snapshot() == before


def test_daemon_not_running_is_one_line_exit_1(tmp_path) -> None:
    proc = run_cli("list", env={"LXCTOOL_SOCKET": str(tmp_path / "nope.socket")})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "not answering" in proc.stderr and "start it" in proc.stderr
    doctor = run_cli("doctor", env={"LXCTOOL_SOCKET": str(tmp_path / "nope.socket")})
    assert doctor.returncode == 1 and "missing" in doctor.stdout


def test_unknown_format_is_a_usage_error() -> None:
    proc = run_cli("list", "--format", "xml")
    assert proc.returncode == 2 and "--format" in proc.stderr


def test_help_everywhere_and_fast_import() -> None:
    top = run_cli("--help", check=True).stdout
    commands = [ln.split()[0] for ln in top.split("Commands:")[1].splitlines() if ln.strip()]
    assert {"launch", "list", "info", "limits", "start", "stop", "restart", "delete", "exec",
            "doctor", "image"} <= set(commands)
    for cmd in commands:
        proc = run_cli(cmd, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout, cmd
    # `lxctool --help` must not import pylxd (0.3 s) or psutil
    code = ("import sys; from lxctool.cli import cli; "
            "import click.testing as t; t.CliRunner().invoke(cli, ['--help']); "
            "print(sorted(m for m in ('pylxd','psutil','tabulate','yaml') if m in sys.modules))")
    out = subprocess.run([str(REPO / ".venv/bin/python"), "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert sys.version_info >= (3, 10)
