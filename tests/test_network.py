"""Integration: real bridges and containers. Addresses (DHCP, fixed, refused, raced), several
networks per container, names through the bridge's DNS, published ports, delete rules."""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any, Callable

import pytest
from conftest import run_cli
from test_network_lab import Lab, lab  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def stable(snap: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The parts of a host snapshot other helpers' concurrent tests do not touch."""
    return {"networks": snap["networks"], "iptables": snap["iptables"], "profiles": snap["profiles"],
            "instances": [i for i in snap["instances"] if i[0].startswith(prefix)],
            "links": [n for n in snap["links"] if n.startswith(("n" + prefix, "lxifb"))]}


def one_error(proc: subprocess.CompletedProcess[str], field: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert any(ln.startswith(f"lxctool: error: {field}: ") for ln in lines), proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_network_input_changes_nothing(lab: Lab, snapshot: Callable[[], dict[str, Any]],
                                          run_prefix: str) -> None:
    name, net = lab.network("a")
    before = stable(snapshot(), run_prefix)
    other = f"n{run_prefix}b"
    lab.names.append(other)
    cases = [
        (["--subnet", "8.8.8.1/24"], "--subnet"),                                    # not private
        (["--subnet", f"{net.network_address + 1}/25"], "--subnet"),               # overlaps a bridge
        (["--subnet", "10.191.0.65/26"], "--subnet"),                               # overlaps lxctool0
        (["--subnet", "10.252.1.1/28", "--dhcp-range", "10.252.1.2-10.252.1.60"], "--dhcp-range"),
        (["--subnet", "10.252.1.1/24", "--nat"], "--nat"),
    ]
    for args, field in cases:
        one_error(run_cli("network", "create", other, *args), field)
    one_error(run_cli("network", "create", name, "--subnet", "10.252.2.1/24"), "NAME")
    assert stable(snapshot(), run_prefix) == before


def test_dhcp_fixed_and_refused_addresses(lab: Lab, containers: Any, lxd: Any,
                                          snapshot: Callable[[], dict[str, Any]], run_prefix: str) -> None:
    name, net = lab.network("a")
    fixed = str(net.network_address + 20)
    c1, row1 = containers.launch("--network", name, "--ip", fixed)
    c2, row2 = containers.launch("--network", name)
    assert row1["ipv4"] == [fixed]
    assert len(row2["ipv4"]) == 1 and row2["ipv4"][0] in {str(h) for h in net.hosts()} and row2["ipv4"][0] != fixed
    before = stable(snapshot(), run_prefix)
    for ip, needle in ((fixed, "already in use"), (row2["ipv4"][0], "already in use"),
                       ("10.99.99.99", "outside"), (str(net.network_address + 1), "gateway")):
        proc = run_cli("launch", containers.name(), "--network", name, "--ip", ip)
        one_error(proc, "--ip")
        assert needle in proc.stderr
    assert stable(snapshot(), run_prefix) == before
    shown = json.loads(run_cli("network", "show", name, "--format", "json", check=True).stdout)
    members = {m["name"]: m for m in shown["members"]}
    assert members[c1]["assigned"] == f"fixed {fixed}" and members[c2]["assigned"] == "dhcp"
    for c in (c1, c2):
        state = lxd.instance_state(c)["network"]["eth0"]
        assert members[c]["mac"] == state["hwaddr"] and members[c]["host_veth"] == state["host_name"]
        assert members[c]["dns"] == f"{c}.lxd"
    # by name through the bridge's DNS, and by address, from inside a container
    gw = str(net.network_address + 1)
    look = lxd.exec(c2, ["nslookup", f"{c1}.lxd", gw])
    assert look.exit_code == 0 and fixed in look.stdout, look.stdout + look.stderr
    assert lxd.exec(c2, ["ping", "-c", "1", "-W", "2", f"{c1}.lxd"]).exit_code == 0
    assert lxd.exec(c2, ["ping", "-c", "1", "-W", "2", fixed]).exit_code == 0


def test_two_racing_launches_for_one_address(lab: Lab, containers: Any) -> None:
    name, net = lab.network("a")
    ip = str(net.network_address + 30)
    names = [containers.name("race"), containers.name("race")]
    procs = [subprocess.Popen(["lxctool", "launch", n, "--network", name, "--ip", ip, "--format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert "already in use" in loser[2]
    winner = json.loads(next(r for r in results if r[0] == 0)[1])
    assert winner["ipv4"] == [ip]


def test_container_on_two_networks(lab: Lab, containers: Any, lxd: Any) -> None:
    n1, net1 = lab.network("a")
    n2, net2 = lab.network("b")
    ip2 = str(net2.network_address + 5)
    gw, _ = containers.launch("--network", n1, "--network", n2, "--ip", f"{n2}={ip2}")
    peer, prow = containers.launch("--network", n2)
    state = lxd.instance_state(gw)["network"]
    assert any(a["address"] == ip2 for a in state["eth1"]["addresses"])
    assert any(a["family"] == "inet" and a["address"].startswith(str(net1.network_address)[:-1])
               for a in state["eth0"]["addresses"])
    assert lxd.exec(peer, ["ping", "-c", "1", "-W", "2", ip2]).exit_code == 0
    run_cli("restart", gw, check=True)  # eth1's DHCP client comes back with the container
    from lxctool.lxd.client import wait_until

    assert wait_until(lambda: any(a["address"] == ip2 for a in
                                  (lxd.instance_state(gw)["network"].get("eth1") or {}).get("addresses") or []), 20)


def test_published_port_answers_on_loopback_only(containers: Any, lxd: Any) -> None:
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name, _ = containers.launch("--publish", f"{port}:80")
    lxd.exec(name, ["sh", "-c", "mkdir -p /www && echo published > /www/index.html && httpd -p 80 -h /www"])
    out = subprocess.run(["wget", "-q", "-O", "-", "-T", "5", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True)
    if out.returncode != 0:  # the host may lack wget: use Python
        import urllib.request

        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
    else:
        body = out.stdout
    assert body.strip() == "published"
    with pytest.raises(OSError):  # the host's address on lxctool0 is not listening
        socket.create_connection(("10.191.0.1", port), timeout=3).close()
    proc = run_cli("launch", containers.name(), "--publish", f"{port}:80")
    one_error(proc, "--publish")
    assert "already bound" in proc.stderr


def test_delete_refuses_while_used_and_force_detaches(lab: Lab, containers: Any, lxd: Any) -> None:
    name, _ = lab.network("a")
    c, _ = containers.launch("--network", name)
    proc = run_cli("network", "delete", name)
    one_error(proc, "NAME")
    assert c in proc.stderr and lxd.network(name) is not None
    proc = run_cli("network", "delete", "--force", name)
    assert proc.returncode == 0, proc.stderr
    assert f"detached {c} from {name}" in proc.stderr
    assert lxd.network(name) is None
    assert all(d.get("network") != name for d in lxd.instance(c)["devices"].values())


def test_subnet_overlapping_a_host_route_is_refused(lxd: Any, run_prefix: str,
                                                    snapshot: Callable[[], dict[str, Any]]) -> None:
    from test_network_lab import free_subnet

    net = free_subnet(lxd)
    dummy = f"n{run_prefix}d"
    subprocess.run(["ip", "link", "add", dummy, "type", "veth", "peer", "name", f"n{run_prefix}e"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{net.network_address + 1}/24", "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        before = stable(snapshot(), run_prefix)
        proc = run_cli("network", "create", f"n{run_prefix}x", "--subnet", f"{net.network_address + 129}/25")
        one_error(proc, "--subnet")
        assert f"overlaps {net}" in proc.stderr
        assert stable(snapshot(), run_prefix) == before
    finally:
        subprocess.run(["ip", "link", "del", dummy], capture_output=True)
