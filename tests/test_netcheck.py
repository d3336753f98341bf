"""Integration: `net check` on two isolated networks with three fixed-address containers.

Proves the matrix matches the layout, that "nothing forwarded out" holds against an outside
network namespace the test creates (with the drop rule's counters), and that breaking the
isolation on purpose makes `net check` exit 3.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from typing import Any, Iterator

import pytest
from conftest import Containers, run_cli
from test_network_lab import Lab, free_subnet, wait_listening

from lxctool.host import firewall

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def layout(lxd: Any, run_prefix: str) -> Iterator[dict[str, Any]]:
    """n1: a1, a2; n2: b1 - all with fixed addresses."""
    prefix = run_prefix + "k"
    lab, cs = Lab(lxd, prefix), Containers(lxd, prefix)
    try:
        n1, net1 = lab.network("1")
        n2, net2 = lab.network("2")
        ips = {"a1": str(net1.network_address + 11), "a2": str(net1.network_address + 12),
               "b1": str(net2.network_address + 11)}
        names = {}
        for tag, net in (("a1", n1), ("a2", n1), ("b1", n2)):
            names[tag], row = cs.launch("--network", net, "--ip", ips[tag], tag=tag)
            assert row["ipv4"] == [ips[tag]]
        yield {"n1": n1, "n2": n2, "ips": ips, "names": names}
    finally:
        cs.cleanup()
        lab.cleanup()


def check(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    proc = run_cli("net", "check", *args, "--format", "json")
    return proc.returncode, json.loads(proc.stdout or "[]"), proc.stderr


def test_matrix_matches_layout(layout: dict[str, Any]) -> None:
    code, rows, err = check(layout["n1"], layout["n2"])
    assert code == 0, err + json.dumps(rows, indent=1)
    names = layout["names"]
    got = {(r["source"], r["target"].split(" ")[0], r["probe"]): r for r in rows}
    assert len(rows) == 2 * (6 + 3)  # ordered pairs + host, per probe
    for probe in ("icmp", "tcp"):
        assert got[(names["a1"], names["a2"], probe)]["observed"] == "reachable"
        for src, dst in (("a1", "b1"), ("b1", "a2")):
            r = got[(names[src], names[dst], probe)]
            assert (r["expected"], r["observed"], r["control"]) == ("unreachable", "unreachable", "ok")
        assert got[("host", names["b1"], probe)]["observed"] == "reachable"


@pytest.fixture
def outside(lxd: Any, run_prefix: str) -> Iterator[str]:
    """A network namespace on the host with an HTTP listener: the 'outside' of the bridges."""
    net = free_subnet(lxd)
    ns, host_if = f"n{run_prefix}o", f"n{run_prefix}h"
    addr = str(net.network_address + 2)
    cmds = [["ip", "netns", "add", ns], ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0",
                                         "netns", ns],
            ["ip", "addr", "add", f"{net.network_address + 1}/24", "dev", host_if], ["ip", "link", "set", host_if, "up"],
            ["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"], ["ip", "-n", ns, "link", "set", "eth0", "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "route", "add", "default", "via", str(net.network_address + 1)]]
    server = None
    try:
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True)
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "8473",
                                   "--bind", addr], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_listening([sys.executable, "-c", f"import socket; socket.create_connection(('{addr}', 8473), 1)"],
                           timeout=30)
        except AssertionError:
            server.kill()
            raise AssertionError(f"outside listener never answered: {server.communicate()[1]}") from None
        yield addr
    finally:
        if server is not None:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:  # it must go whatever: the namespace is removed next
                server.kill()
                server.wait(10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


def drop_counter(bridge: str) -> int:
    out = subprocess.run(["iptables", "-w", "-L", "FORWARD", "-v", "-n", "-x"], capture_output=True, text=True).stdout
    return sum(int(ln.split()[0]) for ln in out.splitlines() if f"lxctool isolation {bridge} " in ln + " ")


def test_nothing_forwarded_to_outside(layout: dict[str, Any], outside: str) -> None:
    before = drop_counter(layout["n1"])
    code, rows, err = check(layout["n1"], layout["n2"], "--outside", outside)
    assert code == 0, err + json.dumps(rows, indent=1)
    out_rows = [r for r in rows if r["target"].startswith("outside")]
    assert len(out_rows) == 2 * 3
    assert all(r["observed"] == "unreachable" and r["control"] == "ok" for r in out_rows)
    # the positive control: the host itself reaches the outside namespace
    assert ipaddress.IPv4Address(outside)
    assert drop_counter(layout["n1"]) > before  # the drop rule saw (and dropped) the probes


def test_broken_isolation_is_reported(layout: dict[str, Any]) -> None:
    try:
        firewall.remove_isolation(layout["n1"])
        firewall.remove_isolation(layout["n2"])
        code, rows, err = check(layout["n1"], layout["n2"])
        assert code == 3, err
        bad = [r for r in rows if r["verdict"] == "MISMATCH"]
        assert bad and all(r["expected"] == "unreachable" and r["observed"] == "reachable" for r in bad)
        assert "differ from the layout" in err
    finally:
        firewall.ensure_isolation(layout["n1"])
        firewall.ensure_isolation(layout["n2"])
    code, _rows, err = check(layout["n1"], layout["n2"])
    assert code == 0, err
