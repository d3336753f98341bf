"""Shared fixtures for the network tests: real isolated bridges on free private /24s, removed after.

Other network test modules import `lab` from here. Every bridge is created through the CLI
with NAT off, no IPv6 and its FORWARD drop rule, and deleted (with --force) at teardown.
"""

from __future__ import annotations

import ipaddress
import json
import random
import subprocess
import time
from typing import Any, Iterator

import pytest
from conftest import run_cli


def free_subnet(lxd: Any) -> ipaddress.IPv4Network:
    """A random 10.2xx.y.0/24 no bridge or host route uses."""
    from lxctool.net.network import taken_subnets

    taken = taken_subnets(lxd)
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError("no free 10.2xx.y.0/24 left")


class Lab:
    """Creates networks through the CLI and removes exactly those (and their users) afterwards."""

    def __init__(self, lxd: Any, prefix: str) -> None:
        self.lxd = lxd
        self.prefix = prefix
        self.names: list[str] = []

    def network(self, tag: str, *args: str) -> tuple[str, ipaddress.IPv4Network]:
        """Create an isolated network; return (name, subnet)."""
        name = f"n{self.prefix}{tag}"
        net = free_subnet(self.lxd)
        self.names.append(name)
        run_cli("network", "create", name, "--subnet", f"{net.network_address + 1}/24", *args, check=True)
        return name, net

    def cleanup(self) -> None:
        for name in reversed(self.names):
            try:
                insts, _ = __import__("lxctool.net.network", fromlist=["users"]).users(self.lxd, name)
            except Exception:  # noqa: BLE001 - already gone
                continue
            for inst in insts:
                if inst.startswith(self.prefix) or inst.startswith("nt-"):
                    subprocess.run(["lxc", "delete", "--force", inst], capture_output=True)
            run_cli("network", "delete", "--force", name)


@pytest.fixture
def lab(lxd: Any, run_prefix: str) -> Iterator[Lab]:
    """Factory for isolated test networks, removed after the test even when it fails."""
    lab = Lab(lxd, run_prefix)
    try:
        yield lab
    finally:
        lab.cleanup()


def test_create_list_show_delete(lab: Lab, lxd: Any) -> None:
    name, net = lab.network("a", "--domain", "lab")
    cfg = lxd.network(name)["config"]
    assert cfg["ipv4.nat"] == "false" and cfg["ipv6.address"] == "none"
    assert cfg["raw.dnsmasq"] == "no-resolv" and cfg["dns.domain"] == "lab"
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert f"-A FORWARD -i {name} ! -o {name}" in rules
    rows = json.loads(run_cli("network", "list", "--format", "json", check=True).stdout)
    row = next(r for r in rows if r["name"] == name)
    assert row["isolated"] is True and row["isolation_rule"] is True and row["nat"] is False
    shown = json.loads(run_cli("network", "show", name, "--format", "json", check=True).stdout)
    assert shown["subnet"] == str(net) and shown["gateway"] == str(net.network_address + 1)
    # a rule lost (LXD rewrites firewall rules when its daemon starts) is put back by lxctool commands
    from lxctool.host import firewall

    firewall.remove_isolation(name)
    assert not firewall.isolation_rule_present(name)
    run_cli("network", "list", check=True)
    assert firewall.isolation_rule_present(name)
    proc = run_cli("network", "delete", name)
    assert proc.returncode == 0, proc.stderr
    assert lxd.network(name) is None
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert f"-i {name} " not in rules


@pytest.mark.integration  # reads the real lxctool0 through the daemon
def test_lxctool0_is_an_ordinary_network() -> None:
    rows = json.loads(run_cli("network", "list", "--format", "json", check=True).stdout)
    row = next(r for r in rows if r["name"] == "lxctool0")
    assert row["isolated"] is True and row["isolation_rule"] is True


def wait_listening(argv: list[str], timeout: float = 10) -> None:
    """Poll until argv exits 0 (a listener answers)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(argv, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{argv} never succeeded")
        time.sleep(0.2)


@pytest.mark.parametrize("args", [["network", "--help"], ["network", "create", "--help"], ["network", "list", "--help"],
                                  ["network", "show", "--help"], ["network", "delete", "--help"],
                                  ["net", "check", "--help"]])
def test_help(args: list[str]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 0 and "Usage:" in proc.stdout


@pytest.mark.parametrize("args,field", [
    (["net", "check", "--outside", "banana"], "--outside"),
    (["net", "check", "nosuchnet0"], "NAME"),
    (["network", "show", "nosuchnet0"], "NAME"),
    (["network", "delete", "nosuchnet0"], "NAME"),
    (["network", "delete", "lxctool0"], "NAME"),          # used by the lxctool profile
    (["network", "create", "x", "--subnet", "10.250.0.1/24"], "NAME"),
])
def test_cli_refusals(lxd: Any, args: list[str], field: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"lxctool: error: {field}: ") and "Traceback" not in proc.stderr


def test_launch_puts_back_the_rule_of_the_network_it_joins(lab: Lab, containers: Any) -> None:
    from lxctool.host import firewall

    name, _ = lab.network("r")
    firewall.remove_isolation(name)
    dry = run_cli("launch", containers.name("iso"), "--network", name, "--dry-run", check=True)
    assert f"ensure-isolation {name}" in dry.stdout
    assert not firewall.isolation_rule_present(name)  # a dry run changes nothing
    proc = run_cli("launch", containers.name("iso"), "--network", name, "--no-wait", check=True)
    assert firewall.isolation_rule_present(name)
    assert f"put back the missing isolation rule of {name}" in proc.stderr
