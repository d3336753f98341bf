"""compare against real containers running known work; references are read independently
(`ps` inside the container, /proc and `ps -e` on the host, the cgroup files), never by lxctool."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import Containers, lxctool_bin, run_cli

pytestmark = pytest.mark.integration


def sh(name: str, script: str) -> None:
    """Start script in the background inside the container, detached from the exec (the busybox
    image has setsid, not nohup)."""
    run_cli("exec", name, "--", "sh", "-c", f"setsid sh -c '{script}' >/dev/null 2>&1 </dev/null &", check=True)


@pytest.fixture(scope="module")
def lab(lxd: Any, run_prefix: str) -> Iterator[dict[str, str]]:
    """A worker (half a CPU, 256MB: 3 sleeps, 1 burner, 100MB in tmpfs) and an idle container."""
    c = Containers(lxd, f"{run_prefix}-cmp")
    try:
        work, _ = c.launch("--cpu", "0.5", "--mem", "256MB", tag="w")
        idle, _ = c.launch("--cpu", "0.5", "--mem", "128MB", tag="i")
        for _ in range(3):
            sh(work, "sleep 100000")
        sh(work, "while :; do :; done")
        run_cli("exec", work, "--", "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs -o size=150m tmpfs /mnt/t && "
                "dd if=/dev/zero of=/mnt/t/blob bs=1M count=100 2>/dev/null", check=True)
        time.sleep(1)
        yield {"work": work, "idle": idle}
    finally:
        c.cleanup()


def compare_json(*args: str) -> list[dict[str, Any]]:
    proc = run_cli("compare", *args, "--format", "json", check=True)
    return json.loads(proc.stdout)


def row(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


def ps_inside(name: str) -> list[str]:
    """Process lines of `lxc exec NAME -- ps`, without the header and the ps itself."""
    out = subprocess.run(["lxc", "exec", name, "--", "ps"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines()[1:] if line.split()[-1:] != ["ps"]]


def proc_pids() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def test_processes_equal_ps_inside_and_host_attribution(lab: dict[str, str]) -> None:
    name = lab["work"]
    before = ps_inside(name)
    rows = compare_json(name)
    after = ps_inside(name)
    assert sum("sleep 100000" in line for line in before) == 3
    assert sum("while :; do :; done" in line for line in before) == 1
    assert len(before) == len(after), "the container's processes changed during the test"
    r = row(rows, name)
    assert r["kind"] == "container" and r["state"] == "RUNNING"
    assert r["processes"] == len(before)
    assert row(rows, "host")["processes_by_container"][name] == len(before)
    assert r["tasks"] >= r["processes"]


def test_processes_in_nested_cgroups_count(lab: dict[str, str]) -> None:
    """systemd inside a container puts its services in child cgroups; they are still its processes."""
    name = lab["work"]
    top = Path(f"/sys/fs/cgroup/pids/lxc.payload.{name}")
    child = top / "nested-by-test"
    sleeper = next(int(p) for p in (top / "cgroup.procs").read_text().split()
                   if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep\x00100000"))
    child.mkdir()
    try:
        (child / "cgroup.procs").write_text(str(sleeper))
        assert str(sleeper) not in (top / "tasks").read_text().split()
        expected = len(ps_inside(name))
        r = row(compare_json(name), name)
        assert r["processes"] == expected and r["tasks"] >= expected
    finally:
        (top / "cgroup.procs").write_text(str(sleeper))
        child.rmdir()


@pytest.mark.slow
def test_systemd_container_processes_equal_proc_inside(containers: Containers) -> None:
    run_cli("image", "build", "debian", check=True, timeout=900)
    name, _ = containers.launch("--image", "debian", "--mem", "256MB")
    time.sleep(3)  # let systemd settle its services
    # the image has no ps: count /proc with shell builtins only, so the one sh is the only extra
    # process (a pipeline's ls and wc may or may not be running when the glob expands)
    count = "set -- /proc/[0-9]*; echo $#"
    before = int(run_cli("exec", name, "--", "sh", "-c", count, check=True).stdout) - 1
    r = row(compare_json(name), name)
    after = int(run_cli("exec", name, "--", "sh", "-c", count, check=True).stdout) - 1
    assert min(before, after) <= r["processes"] <= max(before, after) and r["processes"] >= 4


def test_host_processes_agree_with_proc_and_ps_e(lab: dict[str, str]) -> None:
    from lxctool.observe.measure import host_sample

    ref1 = proc_pids()
    sample = host_sample()
    ref2 = proc_pids()
    assert min(ref1, ref2) - 3 <= sample.processes <= max(ref1, ref2) + 3
    ps_e = len(subprocess.run(["ps", "-e", "--no-headers"], capture_output=True, text=True).stdout.splitlines())
    rows = compare_json(lab["idle"])
    ps_e2 = len(subprocess.run(["ps", "-e", "--no-headers"], capture_output=True, text=True).stdout.splitlines())
    host = row(rows, "host")
    slack = max(10, (ps_e + ps_e2) // 10)  # other work on this machine starts and ends processes
    assert min(ps_e, ps_e2) - slack <= host["processes"] <= max(ps_e, ps_e2) + slack
    assert host["kind"] == "host" and host["threads"] >= host["processes"]
    assert host["processes_in_containers"] + host["processes_host_only"] == host["processes"]


def test_half_cpu_quota_with_a_burner(lab: dict[str, str]) -> None:
    rows = compare_json(lab["work"], "--interval", "3")
    r = row(rows, lab["work"])
    if not 40 <= r["cpu_percent"] <= 55 and row(rows, "host")["cpu_percent_of_limit"] > 90:
        # other work saturated both CPUs, so CFS shared them out: measure once more, for longer
        rows = compare_json(lab["work"], "--interval", "6")
        r = row(rows, lab["work"])
    assert r["cpu_limit_cpus"] == 0.5
    assert 40 <= r["cpu_percent"] <= 55, r
    assert 80 <= r["cpu_percent_of_limit"] <= 110, r
    assert row(rows, "host")["cpu_percent"] >= r["cpu_percent"] - 5


def test_memory_counts_100mb_of_tmpfs_within_the_limit(lab: dict[str, str]) -> None:
    name = lab["work"]
    r = row(compare_json(name), name)
    limit = int(Path(f"/sys/fs/cgroup/memory/lxc.payload.{name}/memory.limit_in_bytes").read_text())
    assert r["memory_limit_bytes"] == limit
    assert 100 * 2**20 <= r["memory_bytes"] <= limit
    assert r["memory_peak_bytes"] >= r["memory_bytes"]
    assert r["disk_bytes"] and r["disk_bytes"] > 100_000
    assert r["ipv4"] and all(re.fullmatch(r"10\.191\.0\.\d+", a) for a in r["ipv4"])
    idle = row(compare_json(lab["idle"]), lab["idle"])
    assert idle["memory_bytes"] < 50 * 10**6 and idle["cpu_percent"] < 5


def test_table_and_explain_answer_where_processes_run(lab: dict[str, str]) -> None:
    proc = run_cli("compare", lab["work"], lab["idle"], "--explain", check=True)
    out = proc.stdout
    assert "where the host's" in out and f"container {lab['work']}" in out
    assert "kernel threads" in out and "hard CFS quota of 0.5 CPU" in out and "page cache" in out
    assert "Traceback" not in proc.stderr


def test_influx_and_prometheus_formats(lab: dict[str, str]) -> None:
    lines = run_cli("compare", lab["work"], "--format", "influx", check=True).stdout.splitlines()
    assert any(line.startswith(f"lxctool,kind=container,name={lab['work']} ") for line in lines)
    assert all(re.fullmatch(r"lxctool,kind=\w+,name=\S+ \S+ \d{19}", line) for line in lines)
    text = run_cli("compare", lab["work"], "--format", "prometheus", check=True).stdout
    assert re.search(rf'lxctool_cpu_seconds_total{{kind="container",name="{lab["work"]}"}} \d', text)
    assert re.search(rf'lxctool_cpu_limit_cpus{{kind="container",name="{lab["work"]}"}} 0\.5', text)


def test_watch_redraws_and_ends_cleanly_on_sigint(lab: dict[str, str]) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([lxctool_bin(), "compare", lab["idle"], "--watch", "--interval", "0.5"],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while out.count(b"\033[H\033[2J") < 2 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                out += os.read(master, 65536)
        assert out.count(b"\033[H\033[2J") >= 2, out[-500:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert out.startswith(b"\033[?1049h")
    assert out.rstrip().endswith(b"\033[?25h\033[?1049l")
    assert lab["idle"].encode() in out and b"Traceback" not in out


def _runs(img: Any, rgb: tuple[int, int, int], min_fraction: float) -> list[int]:
    """Row indices where at least min_fraction of the pixels have colour rgb."""
    import numpy as np

    target = np.array(rgb) / 255.0
    close = (np.abs(img[:, :, :3] - target) < 0.2).all(axis=2)  # antialiased lines are lighter
    return [int(y) for y in np.nonzero(close.sum(axis=1) >= min_fraction * img.shape[1])[0]]


def test_plot_draws_series_and_limit_lines(lab: dict[str, str], tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "usage.png"
    proc = run_cli("compare", lab["idle"], "--samples", "3", "--interval", "0.5", "--plot", str(out), check=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in proc.stderr
    img = mpimg.imread(str(out))
    rows = _runs(img, (0x1f, 0x77, 0xb4), 0.25)  # the first container's colour
    groups = [y for i, y in enumerate(rows) if i == 0 or y - rows[i - 1] > 3]
    # CPU panel: usage near 0 and the 50% limit; memory panel: usage and the 128MB limit
    assert len(groups) >= 4, groups


def test_request_count_is_the_same_for_1_and_10_containers(lxd: Any, run_prefix: str) -> None:
    from lxctool.lxd.client import Lxd
    from lxctool.observe.measure import Sampler

    c = Containers(lxd, f"{run_prefix}-req")
    names = [c.name("r") for _ in range(10)]
    try:
        with ThreadPoolExecutor(4) as pool:  # launch in parallel: the test is about sampling
            list(pool.map(lambda n: c.launch("--mem", "64MB", "--no-wait", name=n), names))
        client = Lxd()
        counts = {}
        for selected in (names[:1], names):
            sampler = Sampler(client, selected)
            before = client.requests
            sample = sampler.sample()
            counts[len(selected)] = client.requests - before
            assert [s.name for s in sample.containers] == selected
            assert all(s.state == "RUNNING" and s.processes and s.processes >= 1 for s in sample.containers)
        assert counts[1] == counts[10] == 1
        run_cli("stop", names[0], "--force", check=True)
        rows = compare_json(names[0], names[1])
        assert row(rows, names[0])["state"] == "STOPPED" and row(rows, names[0])["cpu_percent"] is None
        assert row(rows, names[1])["state"] == "RUNNING"
        alone = run_cli("compare", names[0])
        assert alone.returncode == 2 and "is stopped" in alone.stderr and "Traceback" not in alone.stderr
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: subprocess.run(["lxc", "delete", "-f", n], capture_output=True), names))
        c.cleanup()  # whatever the parallel delete left


@pytest.mark.parametrize("args,field", [
    (["--interval", "0"], "--interval"), (["--interval", "-2"], "--interval"), (["--interval", "x"], "--interval"),
    (["--samples", "0"], "--samples"), (["--samples", "1.5"], "--samples"),
    (["cm-no-such-container"], "NAME"), (["--plot", "out.txt"], "--plot"),
    (["--watch", "--format", "json"], "--watch"),
])
def test_bad_input_one_line_exit_2(args: list[str], field: str, lxd: Any, snapshot: Any) -> None:
    before = snapshot()
    proc = run_cli("compare", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lxctool: error: {field}: "), proc.stderr
    assert proc.stdout == ""
    assert snapshot() == before


def test_several_samples_give_one_row_per_container_per_sample(lab: dict[str, str]) -> None:
    rows = compare_json(lab["idle"], "--samples", "2", "--interval", "0.5")
    assert [r["kind"] for r in rows] == ["host", "container", "host", "container"]
    assert rows[0]["time"] < rows[2]["time"]
    for r in rows:
        assert {"name", "kind", "processes", "tasks", "cpu_percent", "cpu_percent_of_limit", "memory_bytes",
                "memory_limit_bytes", "disk_bytes", "net_rx_bytes_per_s", "net_tx_bytes_per_s", "ipv4"} <= set(r)
        assert isinstance(r["ipv4"], list)
    assert "threads" in rows[0] and "processes_in_containers" in rows[0]
    csv = run_cli("compare", lab["idle"], "--format", "csv", check=True).stdout.splitlines()
    assert csv[0].startswith("time,name,kind,state,processes,tasks") and len(csv) == 3
