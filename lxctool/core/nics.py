"""A container's NICs and published ports as plain values, and the fixed-address check (pure).

Moved here from net/ so that core/desired.py can build an instance without any I/O;
net/attach.py and net/network.py re-export them for their callers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Attachment:
    """One NIC: the network it joins and its fixed address (None = DHCP)."""

    network: str
    ip: str | None = None


@dataclass(frozen=True)
class Publish:
    """A host port forwarded into the container by an LXD proxy device."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"

    def device(self) -> tuple[str, dict[str, str]]:
        """(device name, LXD proxy device)."""
        return (f"publish-{self.proto}-{self.host_port}",
                {"type": "proxy", "bind": "host", "listen": f"{self.proto}:{self.host_ip}:{self.host_port}",
                 "connect": f"{self.proto}:127.0.0.1:{self.container_port}"})


def nic_devices(attachments: list[Attachment], profile_eth0: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Instance NIC devices: eth0 on the first network (over the profile's), eth1... on the rest."""
    out: dict[str, dict[str, Any]] = {}
    for i, att in enumerate(attachments):
        name = f"eth{i}"
        base = dict(profile_eth0 or {}) if i == 0 else {}
        base.pop("ipv4.address", None)
        dev = {**base, "type": "nic", "name": name, "network": att.network}
        dev.pop("nictype", None)
        dev.pop("parent", None)
        if att.ip:
            dev["ipv4.address"] = att.ip
        out[name] = dev
    return out


def check_address(network: Mapping[str, Any], ip: str, used: Mapping[str, str], label: str = "--ip") -> list[str]:
    """Errors unless ip is a free host address of the network's IPv4 subnet (used: address -> holder)."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return [f"{label}: {ip!r} is not an IPv4 address; use a dotted address such as 10.191.0.20"]
    cidr = (network.get("config") or {}).get("ipv4.address") or ""
    if not cidr or cidr == "none":
        return [f"{label}: network {network['name']} has no IPv4 subnet"]
    iface = ipaddress.IPv4Interface(cidr)
    net = iface.network
    if addr not in net:
        return [f"{label}: {ip} is outside {network['name']}'s subnet {net}; use an address in {net}"]
    if addr in (net.network_address, net.broadcast_address, iface.ip):
        kind = {net.network_address: "network", net.broadcast_address: "broadcast", iface.ip: "gateway"}[addr]
        return [f"{label}: {ip} is the {kind} address of {net}; use another host address in {net}"]
    if ip in used:
        return [f"{label}: {ip} is already in use on {network['name']} by {used[ip]}; choose a free address"]
    return []
