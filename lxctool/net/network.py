"""Private lab networks: validate and plan LXD managed bridges, check addresses, create/show/delete.

Pure planning (subnet, DHCP range, address checks) is separate from the LXD and host reads,
so it is tested without fakes. Isolation is a host firewall rule (firewall.py), reasserted by
every network command because LXD rewrites its own rules when the daemon starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

from lxctool.core import nics
from lxctool.host import firewall, run
from lxctool.core.names import ISOLATED_KEY, MANAGED_KEY
from lxctool.core.errors import NotFound, SpecError
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance, Network
from lxctool.net.dns import dns_lookup

PRIVATE = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
PRIVATE_TEXT = "an address in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 with a prefix of /8 to /29"
NAME_RE = r"[a-z][a-z0-9-]{0,13}[a-z0-9]"  # a Linux interface name (15 chars), no dots
LOCK_DIR = os.environ.get("LXCTOOL_RUN_DIR", "/run/lxctool")

check_address = nics.check_address  # moved to core/nics.py (pure); callers still find it here


@dataclass(frozen=True)
class NetworkSpec:
    """A bridge to create, validated."""

    name: str
    subnet: ipaddress.IPv4Interface
    nat: bool = False
    isolated: bool = True
    dhcp_range: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
    domain: str = "lxd"

    def lxd_config(self) -> dict[str, str]:
        """The LXD network config keys of this bridge."""
        cfg = {"ipv4.address": str(self.subnet), "ipv4.nat": str(self.nat).lower(),
               "ipv6.address": "none", "ipv6.nat": "false", "dns.domain": self.domain,
               # the bridge's DNS answers container names only, never forwards upstream
               "raw.dnsmasq": "no-resolv", MANAGED_KEY: "true", ISOLATED_KEY: str(self.isolated).lower()}
        if self.dhcp_range:
            cfg["ipv4.dhcp.ranges"] = f"{self.dhcp_range[0]}-{self.dhcp_range[1]}"
        return cfg


def parse_network_spec(name: str, subnet: str, nat: bool, isolated: bool, dhcp_range: str | None,
                       domain: str | None, taken: list[ipaddress.IPv4Network]) -> NetworkSpec:
    """Validate every option (collecting all errors) against the networks already in use."""
    errors = []
    if not re.fullmatch(NAME_RE, name):
        errors.append(f"NAME: {name!r} is not a valid bridge name; use 2-15 lowercase letters, digits "
                      "and hyphens, starting with a letter")
    iface = None
    try:
        iface = ipaddress.IPv4Interface(subnet)
        if "/" not in subnet:
            raise ValueError
    except ValueError:
        errors.append(f"--subnet: {subnet!r} is not GATEWAY/PREFIX; use e.g. 10.20.0.1/24 ({PRIVATE_TEXT})")
    if iface is not None:
        errors += subnet_errors(iface, taken)
    if nat and isolated:
        errors.append("--nat: an isolated network forwards nothing out, so it has no NAT; "
                      "add --no-isolated to use --nat")
    rng = None
    if dhcp_range is not None and iface is not None:
        rng = _dhcp_range(dhcp_range, iface, errors)
    if domain is not None and not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", domain):
        errors.append(f"--domain: {domain!r} is not a DNS domain; use lowercase labels like lab or lab.test")
    if errors:
        raise SpecError(errors)
    assert iface is not None
    return NetworkSpec(name, iface, nat, isolated, rng, domain or "lxd")


def subnet_errors(iface: ipaddress.IPv4Interface, taken: list[ipaddress.IPv4Network]) -> list[str]:
    """Errors unless iface is a private gateway/prefix that overlaps nothing in taken."""
    net = iface.network
    if not any(net.subnet_of(p) for p in PRIVATE) or not 8 <= net.prefixlen <= 29:
        return [f"--subnet: {iface} is not a private range; use {PRIVATE_TEXT}"]
    if iface.ip in (net.network_address, net.broadcast_address):
        return [f"--subnet: {iface.ip} is the network or broadcast address of {net}; "
                f"give the gateway, e.g. {net.network_address + 1}/{net.prefixlen}"]
    clash = [t for t in taken if t.overlaps(net)]
    if clash:
        return [f"--subnet: {net} overlaps {', '.join(map(str, clash))} already used on this host "
                "(a bridge or a host route); choose a free range"]
    return []


def _dhcp_range(text: str, iface: ipaddress.IPv4Interface, errors: list[str]) -> Any:
    net = iface.network
    try:
        first, last = (ipaddress.IPv4Address(p.strip()) for p in text.split("-"))
    except ValueError:
        errors.append(f"--dhcp-range: {text!r} is not FIRST-LAST; use e.g. "
                      f"{net.network_address + 10}-{net.network_address + 50}")
        return None
    hosts = (net.network_address + 1, net.broadcast_address - 1)
    if not (hosts[0] <= first <= last <= hosts[1]):
        errors.append(f"--dhcp-range: {text} does not fit {net}; use FIRST-LAST within {hosts[0]}-{hosts[1]}, "
                      "FIRST not after LAST (or a shorter prefix for a larger range)")
        return None
    if first <= iface.ip <= last:
        errors.append(f"--dhcp-range: {text} contains the gateway {iface.ip}; leave it out of the range")
        return None
    return first, last


# -- reads of the host and LXD ------------------------------------------------------------------
def host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 routes of the host (every table but the default route), from `ip -j -4 route`."""
    out = []
    for table in ("main", "local"):
        proc = run.run(["ip", "-j", "-4", "route", "show", "table", table], check=False)
        for r in json.loads(proc.stdout or "[]"):
            dst = r.get("dst", "default")
            if dst != "default" and r.get("type", "unicast") in ("unicast", "local"):
                with contextlib.suppress(ValueError):
                    out.append(ipaddress.IPv4Network(dst, strict=False))
    return [n for n in out if not n.is_loopback]


def taken_subnets(lxd: Lxd) -> list[ipaddress.IPv4Network]:
    """Subnets already used here: every LXD network's IPv4 and every host route."""
    nets = [iface.network for iface in (Network(n).ipv4_interface for n in lxd.networks()) if iface]
    return sorted(set(nets + host_routes()))


def used_addresses(lxd: Lxd, network: str, instances: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Addresses in use on a network: leases, reservations and every NIC's fixed ipv4.address."""
    used = {lease["address"]: lease.get("hostname") or "a DHCP lease"
            for lease in lxd.network_leases(network) if lease.get("address")}
    used.update(instance_addresses(network, instances if instances is not None else lxd.instances_full()))
    return used


def instance_addresses(network: str, instances: list[dict[str, Any]]) -> dict[str, str]:
    """Address -> instance for these instance records on a network: fixed ipv4.address, then state."""
    used: dict[str, str] = {}
    for record in instances:
        inst = Instance(record)
        for dev in inst.nics().values():
            if dev.get("network") == network and dev.get("ipv4.address"):
                used[dev["ipv4.address"]] = inst.name
        for addr in _state_addrs(record, network):
            used.setdefault(addr, inst.name)
    return used


def _state_addrs(record: dict[str, Any], network: str) -> list[str]:
    """IPv4 addresses the instance record's state shows on its NICs attached to network."""
    inst = Instance(record)
    out = []
    for nic, dev in inst.expanded_devices.items():
        if dev.get("network") == network:
            out += [a["address"] for a in inst.nic_state(nic).get("addresses") or [] if a.get("family") == "inet"]
    return out


@contextlib.contextmanager
def address_lock() -> Iterator[None]:
    """Serialise address check + create across lxctool processes (an fcntl lock under /run)."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    # append mode: taking the lock must not touch the file (no truncation, so no new mtime)
    with open(os.path.join(LOCK_DIR, "addresses.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_lxctool(net: dict[str, Any]) -> bool:
    """Whether lxctool made this network (or adopted it: lxctool0 carries the same marker)."""
    return Network(net).lxctool


def is_isolated(net: dict[str, Any]) -> bool:
    """Whether the network is meant to forward nothing out."""
    return Network(net).isolated


def reassert_isolation(lxd: Lxd, networks: list[dict[str, Any]] | None = None) -> list[str]:
    """Put back missing drop rules of isolated lxctool bridges; return the bridges fixed."""
    if not lxd.is_local:  # a remote's bridges are in its own host's iptables, not ours
        return []
    fixed = []
    for net in networks if networks is not None else lxd.networks():
        if is_lxctool(net) and is_isolated(net) and firewall.ensure_isolation(net["name"]):
            fixed.append(net["name"])
    return fixed


def require_network(lxd: Lxd, name: str) -> dict[str, Any]:
    """The network's record; NotFound when there is none."""
    net = lxd.network(name)
    if net is None:
        raise NotFound(f"NAME: no network named {name!r}; see `lxctool network list`")
    return net


def description(spec: NetworkSpec) -> str:
    """The LXD description of a bridge lxctool creates."""
    return f"lxctool {'isolated ' if spec.isolated else ''}lab network"


def users(lxd: Lxd, name: str) -> tuple[list[str], list[str]]:
    """(instances, profiles) that use the network, from its used_by list."""
    net = Network(require_network(lxd, name))
    return net.used_by_instances, net.used_by_profiles


# -- list / show ----------------------------------------------------------------------------------
def list_rows(lxd: Lxd, all_networks: bool = False) -> list[dict[str, Any]]:
    """One row per bridge (lxctool's unless all_networks), with its users counted."""
    records = [n for n in lxd.networks() if Network(n).lxd_managed and (all_networks or Network(n).lxctool)]
    reassert_isolation(lxd, records)
    rows = []
    for n in map(Network, records):
        cfg = n.config
        rows.append({"name": n.name, "subnet": cfg.get("ipv4.address"), "nat": cfg.get("ipv4.nat") == "true",
                     "isolated": n.isolated,
                     "isolation_rule": (firewall.isolation_rule_present(n.name)
                                        if n.isolated and lxd.is_local else None),
                     "dhcp_range": cfg.get("ipv4.dhcp.ranges") or "all", "domain": cfg.get("dns.domain"),
                     "containers": len(n.used_by_instances), "state": n.status})
    return sorted(rows, key=lambda r: r["name"])


def members(lxd: Lxd, name: str, instances: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each container NIC on the network: address (fixed or DHCP), MAC and host-side veth."""
    leases = {lease.get("hwaddr"): lease for lease in lxd.network_leases(name)}
    rows = []
    for record in instances if instances is not None else lxd.instances_full():
        inst = Instance(record)
        for nic, dev in sorted(inst.nics().items()):
            if dev.get("network") != name:
                continue
            info = inst.nic_state(dev.get("name", nic))
            mac = info.get("hwaddr") or inst.config.get(f"volatile.{nic}.hwaddr")
            addrs = [a["address"] for a in info.get("addresses") or []
                     if a.get("family") == "inet" and a.get("scope") == "global"]
            lease = leases.get(mac) or {}
            rows.append({"name": inst.name, "state": inst.status.upper(),
                         "nic": dev.get("name", nic), "ipv4": addrs or ([lease["address"]] if lease.get("address") else []),
                         "assigned": "fixed " + dev["ipv4.address"] if dev.get("ipv4.address") else "dhcp",
                         "mac": mac, "host_veth": inst.veth(dev.get("name", nic))})
    return rows


def show(lxd: Lxd, name: str, resolve: bool = True) -> dict[str, Any]:
    """A network's subnet, gateway, isolation and members, with the names its DNS resolves."""
    record = require_network(lxd, name)
    reassert_isolation(lxd, [record])
    net = Network(record)
    cfg = net.config
    iface = net.ipv4_interface
    rows = members(lxd, name)
    domain = cfg.get("dns.domain") or "lxd"
    if resolve and iface is not None and lxd.is_local:  # a remote's bridge is not ours to query
        for r in rows:
            fqdn = f"{r['name']}.{domain}"
            r["dns"] = fqdn if r["state"] == "RUNNING" and dns_lookup(str(iface.ip), fqdn) else None
    return {"name": name, "subnet": str(iface.network) if iface else None,
            "gateway": str(iface.ip) if iface else None, "nat": cfg.get("ipv4.nat") == "true",
            "isolated": net.isolated, "lxctool": net.lxctool,
            "isolation_rule": firewall.isolation_rule_present(name) if lxd.is_local else None,
            "dhcp_range": cfg.get("ipv4.dhcp.ranges") or "all", "domain": domain,
            "members": rows}
