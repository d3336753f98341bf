"""Pure tests of network planning: subnets, DHCP ranges, addresses, attachments, publish, probes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lxctool.net import check as netcheck
from lxctool.net import attach as netplan
from lxctool.host import shaping as netshape
from lxctool.net import network as net
from lxctool.core.errors import SpecError

TAKEN = [ipaddress.IPv4Network("10.191.0.0/24"), ipaddress.IPv4Network("192.0.2.0/24")]


@pytest.fixture(autouse=True)
def hook_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The start-host hook script's path points into a temporary folder: a test that reaches
    ensure_hook_script writes there, never into the host's /var/lib/lxctool."""
    path = tmp_path / "hooks" / "net-out"
    monkeypatch.setattr(netshape, "HOOK_PATH", path)
    return path


def parse(subnet: str, **kw: object) -> net.NetworkSpec:
    args = {"nat": False, "isolated": True, "dhcp_range": None, "domain": None, **kw}
    return net.parse_network_spec(str(kw.pop("name", "lab1")), subnet, args["nat"], args["isolated"],
                                  args["dhcp_range"], args["domain"], TAKEN)  # type: ignore[arg-type]


def test_valid_spec_config() -> None:
    spec = parse("10.20.0.1/24", dhcp_range="10.20.0.100-10.20.0.150", domain="lab")
    cfg = spec.lxd_config()
    assert cfg["ipv4.address"] == "10.20.0.1/24" and cfg["ipv4.nat"] == "false"
    assert cfg["ipv6.address"] == "none" and cfg["raw.dnsmasq"] == "no-resolv"
    assert cfg["ipv4.dhcp.ranges"] == "10.20.0.100-10.20.0.150" and cfg["dns.domain"] == "lab"
    assert cfg["user.lxctool.isolated"] == "true"


@pytest.mark.parametrize("subnet,needle", [
    ("8.8.8.1/24", "not a private range"),
    ("172.32.0.1/24", "not a private range"),
    ("10.191.0.129/25", "overlaps 10.191.0.0/24"),
    ("10.0.0.1/8", "overlaps"),
    ("10.20.0.0/24", "network or broadcast"),
    ("10.20.0.1", "not GATEWAY/PREFIX"),
    ("10.20.0.1/30", "not a private range"),
    ("banana", "not GATEWAY/PREFIX"),
])
def test_bad_subnets(subnet: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse(subnet)
    assert needle in str(exc.value) and exc.value.errors[0].startswith("--subnet: ")


@pytest.mark.parametrize("rng,needle", [
    ("10.20.0.10-10.20.1.50", "does not fit"),
    ("10.20.0.50-10.20.0.10", "does not fit"),
    ("10.20.0.1-10.20.0.9", "contains the gateway"),
    ("10.20.0.10", "not FIRST-LAST"),
])
def test_bad_dhcp_ranges(rng: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse("10.20.0.1/24", dhcp_range=rng)
    assert needle in str(exc.value)


def test_prefix_too_small_for_range() -> None:
    with pytest.raises(SpecError) as exc:
        parse("10.20.0.1/28", dhcp_range="10.20.0.2-10.20.0.40")
    assert "shorter prefix" in str(exc.value)


def test_all_errors_at_once() -> None:
    with pytest.raises(SpecError) as exc:
        parse("8.8.8.1/24", name="Bad.Name", nat=True, domain="UP")
    fields = [e.split(":")[0] for e in exc.value.errors]
    assert fields == ["NAME", "--subnet", "--nat", "--domain"]


NETREC = {"name": "lab1", "config": {"ipv4.address": "10.20.0.1/24"}}


@pytest.mark.parametrize("ip,needle", [
    ("10.20.1.5", "outside lab1's subnet 10.20.0.0/24"),
    ("10.20.0.0", "network address"),
    ("10.20.0.255", "broadcast address"),
    ("10.20.0.1", "gateway address"),
    ("10.20.0.7", "already in use on lab1 by web"),
    ("10.20.0.300", "not an IPv4 address"),
])
def test_address_checks(ip: str, needle: str) -> None:
    errors = net.check_address(NETREC, ip, {"10.20.0.7": "web"})
    assert len(errors) == 1 and needle in errors[0] and errors[0].startswith("--ip: ")


def test_free_address_passes() -> None:
    assert net.check_address(NETREC, "10.20.0.8", {"10.20.0.7": "web"}) == []


def test_attachments() -> None:
    errors: list[str] = []
    atts = netplan.parse_attachments(["a", "b"], ["10.1.0.5", "b=10.2.0.5"], errors)
    assert errors == [] and atts == [netplan.Attachment("a", "10.1.0.5"), netplan.Attachment("b", "10.2.0.5")]
    netplan.parse_attachments(["a"], ["c=10.1.0.5", "a=1.1.1.1", "a=1.1.1.2"], errors)
    assert len(errors) == 2 and "not one of the --network" in errors[0] and "two addresses" in errors[1]


def test_nic_devices() -> None:
    devs = netplan.nic_devices([netplan.Attachment("a", "10.1.0.5"), netplan.Attachment("b")],
                               {"type": "nic", "name": "eth0", "network": "lxctool0", "limits.ingress": "1Mbit"})
    assert devs["eth0"] == {"type": "nic", "name": "eth0", "network": "a", "ipv4.address": "10.1.0.5",
                            "limits.ingress": "1Mbit"}
    assert devs["eth1"] == {"type": "nic", "name": "eth1", "network": "b"}


def test_publish_parsing() -> None:
    errors: list[str] = []
    pubs = netplan.parse_publish(["0:80", "127.0.0.1:70000:80", "x:1:2", "1:2/sctp"], errors)
    assert pubs == [] and len(errors) == 4
    name, dev = netplan.Publish("127.0.0.1", 18080, 80, "tcp").device()
    assert name == "publish-tcp-18080"
    assert dev == {"type": "proxy", "bind": "host", "listen": "tcp:127.0.0.1:18080",
                   "connect": "tcp:127.0.0.1:80"}


def test_egress_config_keeps_other_raw_lxc(hook_in_tmp: Path) -> None:
    cfg = netshape.egress_config(10_000_000, "lxc.apparmor.profile = unconfined\n")
    assert str(hook_in_tmp) in cfg["raw.lxc"] and not hook_in_tmp.exists()  # planning writes nothing
    assert cfg["user.lxctool.net-out"] == "10000000"
    lines = cfg["raw.lxc"].splitlines()
    assert lines[0] == "lxc.apparmor.profile = unconfined"
    assert lines[1].startswith("lxc.hook.start-host = ") and lines[1].endswith("net-out 10000000")
    off = netshape.egress_config(None, cfg["raw.lxc"])
    assert off == {"user.lxctool.net-out": "", "raw.lxc": "lxc.apparmor.profile = unconfined\n"}


def test_split_egress_only_without_police() -> None:
    config: dict[str, str] = {}
    dev_keys = {"eth0": {"limits.egress": "10Mbit", "limits.ingress": "5Mbit"}}
    netshape.split_egress(config, dev_keys, "", police=True)
    assert dev_keys["eth0"]["limits.egress"] == "10Mbit" and config == {}
    netshape.split_egress(config, dev_keys, "", police=False)
    assert dev_keys == {"eth0": {"limits.ingress": "5Mbit"}} and config["user.lxctool.net-out"] == "10000000"


def test_ifb_name_is_short_and_stable() -> None:
    a = netshape.ifb_name("web1")
    assert a == netshape.ifb_name("web1") != netshape.ifb_name("web2") and len(a) <= 15
    assert netshape.lxc_name("c1", "p") == "p_c1" and netshape.lxc_name("c1", None) == "c1"


def test_expected_reachability() -> None:
    nets = [{"name": "n1", "config": {"user.lxctool.isolated": "true"}},
            {"name": "n2", "config": {"user.lxctool.isolated": "true"}}]
    members = [netcheck.Member("a", {"n1": "10.1.0.2"}), netcheck.Member("b", {"n1": "10.1.0.3"}),
               netcheck.Member("c", {"n2": "10.2.0.2"}), netcheck.Member("d", {"n1": "10.1.0.4", "n2": "10.2.0.4"})]
    probes = netcheck.expected_probes(nets, members, ["10.9.0.2"])
    exp = {(p.source, p.addr, p.probe): p.expected for p in probes}
    assert exp[("a", "10.1.0.3", "icmp")] == "reachable"
    assert exp[("a", "10.2.0.2", "tcp")] == "unreachable"
    assert exp[("a", "10.2.0.4", "icmp")] == "unreachable"   # d's address on a network a is not on
    assert exp[("d", "10.2.0.2", "icmp")] == "reachable"
    assert exp[("host", "10.2.0.2", "tcp")] == "reachable"
    assert exp[("c", "10.9.0.2", "icmp")] == "unreachable"
    assert len(probes) == 2 * ((4 + 4 + 4 + 3) + 4 + 5)  # per probe: pairs by address, outside, host


def test_not_isolated_networks_route() -> None:
    nets = [{"name": "n1", "config": {}}, {"name": "n2", "config": {}}]
    members = [netcheck.Member("a", {"n1": "10.1.0.2"}), netcheck.Member("c", {"n2": "10.2.0.2"})]
    exp = {(p.source, p.addr): p.expected for p in netcheck.expected_probes(nets, members, [])}
    assert exp[("a", "10.2.0.2")] == "reachable"
