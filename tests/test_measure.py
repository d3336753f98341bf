"""measure's raw numbers against references read by other tools: du, df, /proc/meminfo, ps,
and the host-side veth counters in /sys for network rates between two of our containers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from lxctool.observe.measure import _tree_bytes, host_sample

pytestmark = pytest.mark.integration


def test_host_memory_disk_and_kernel_threads_match_other_tools() -> None:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    df = subprocess.run(["df", "-B1", "--output=size,used", "/"], capture_output=True, text=True,
                        check=True).stdout.split()
    ps = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    kthreads = sum(1 for line in ps.splitlines() if line.split()[0] == "2" or line.split()[1] == "2")
    s = host_sample()
    assert s.memory_total == int(meminfo["MemTotal"].split()[0]) * 1024
    assert s.disk_total == int(df[2])
    assert abs(s.disk_used - int(df[3])) < 200 * 10**6  # other work writes while we read
    assert abs(s.kernel_threads - kthreads) <= 3
    assert s.threads >= s.processes > s.kernel_threads


def test_disk_walk_matches_du(lxd: Any, containers: Any) -> None:
    name, _ = containers.launch("--mem", "64MB")
    # sync: btrfs allocates blocks (what du and st_blocks count) only at writeback
    run_cli("exec", name, "--", "sh", "-c", "dd if=/dev/urandom of=/root/blob bs=1M count=5 && sync", check=True)
    pool = lxd.instance(name)["expanded_devices"]["root"]["pool"]
    path = Path(lxd.socket_path).parent / "storage-pools" / pool / "containers" / name
    du = int(subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True,
                            check=True).stdout.split()[0])
    mine = _tree_bytes(path)
    assert du >= 5 * 2**20 and abs(mine - du) <= 64 * 1024, (mine, du)
    rows = json.loads(run_cli("compare", name, "--format", "json", check=True).stdout)
    assert next(r for r in rows if r["name"] == name)["disk_bytes"] >= 5 * 2**20


def veth_bytes(veth: str) -> tuple[int, int]:
    """(rx, tx) of the host side of a container's veth: rx here is what the container sent."""
    stats = Path(f"/sys/class/net/{veth}/statistics")
    return int((stats / "rx_bytes").read_text()), int((stats / "tx_bytes").read_text())


def test_network_rates_match_the_host_side_veth_counters(lxd: Any, containers: Any) -> None:
    sink, sink_row = containers.launch("--mem", "64MB", tag="sink")
    src, _ = containers.launch("--mem", "64MB", tag="src")
    run_cli("exec", sink, "--", "sh", "-c",
            # busybox nc -l hangs up when its stdin ends: feed it a pipe that never does
            "setsid sh -c 'while :; do sleep 100000 | nc -l -p 5001 >/dev/null; done' >/dev/null 2>&1 </dev/null &", check=True)
    time.sleep(0.5)
    ip = sink_row["ipv4"][0]
    run_cli("exec", src, "--", "sh", "-c",
            f"setsid sh -c 'while :; do cat /dev/zero | nc {ip} 5001; sleep 0.2; done' >/dev/null 2>&1 </dev/null &",
            check=True)
    time.sleep(1)
    veth_src = lxd.instance_state(src)["network"]["eth0"]["host_name"]
    veth_sink = lxd.instance_state(sink)["network"]["eth0"]["host_name"]
    t0, a_src, a_sink = time.monotonic(), veth_bytes(veth_src), veth_bytes(veth_sink)
    rows = json.loads(run_cli("compare", src, sink, "--interval", "2", "--format", "json", check=True).stdout)
    t1, b_src, b_sink = time.monotonic(), veth_bytes(veth_src), veth_bytes(veth_sink)
    sent = next(r for r in rows if r["name"] == src)["net_tx_bytes_per_s"]
    got = next(r for r in rows if r["name"] == sink)["net_rx_bytes_per_s"]
    # the host saw the source's veth receive, and the sink's veth send, at these average rates
    ref_sent = (b_src[0] - a_src[0]) / (t1 - t0)
    ref_got = (b_sink[1] - a_sink[1]) / (t1 - t0)
    assert ref_sent > 1e6, "no traffic flowed"
    assert 0.5 * ref_sent <= sent <= 2.0 * ref_sent, (sent, ref_sent)
    assert 0.5 * ref_got <= got <= 2.0 * ref_got, (got, ref_got)
    assert abs(sent - got) <= 0.2 * max(sent, got)
