"""Launch-time network planning: which NIC joins which network with which address, and published ports.

The values themselves (Attachment, Publish, nic_devices) and the address check are pure and
live in core/nics.py; the launch re-checks a fixed address under network.address_lock() so
two launches cannot both take it.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import shlex
import socket
from typing import Any

from lxctool.core import nics
from lxctool.core.nics import Attachment, Publish
from lxctool.lxd.client import Lxd, wait_until
from lxctool.lxd.views import Instance

PUBLISH_RE = re.compile(r"(?:(?P<ip>[0-9.]+):)?(?P<hport>\d+):(?P<cport>\d+)(?:/(?P<proto>tcp|udp))?")
PUBLISH_ACCEPTED = "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp], ports 1-65535"
NIC_SCRIPT = "/etc/lxctool-nic.script"
NIC_SCRIPT_BODY = b"""#!/bin/sh
# written by lxctool: address only (eth0 keeps the default route and resolv.conf)
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
"""

nic_devices = nics.nic_devices  # moved to core/nics.py (pure); callers still find it here


def parse_attachments(networks: list[str], ips: list[str], errors: list[str]) -> list[Attachment]:
    """--network N (repeatable) and --ip ADDR | --ip NET=ADDR -> one Attachment per network."""
    nets = list(dict.fromkeys(networks))
    if len(nets) != len(networks):
        errors.append("--network: a network is named twice; give each network once")
    fixed: dict[str, str] = {}
    for item in ips:
        net, _, addr = item.rpartition("=")
        net = net or nets[0]
        if net not in nets:
            errors.append(f"--ip: {item!r} names network {net!r}, which is not one of the --network "
                          f"options ({', '.join(nets)}); use --ip NET=ADDR with a NET given to --network")
        elif net in fixed:
            errors.append(f"--ip: two addresses for {net}; give one address per network")
        else:
            fixed[net] = addr
    return [Attachment(n, fixed.get(n)) for n in nets]


def parse_publish(items: list[str], errors: list[str]) -> list[Publish]:
    """--publish values -> Publish, each checked free on the host."""
    out: list[Publish] = []
    for item in items:
        m = PUBLISH_RE.fullmatch(item.strip())
        if not m:
            errors.append(f"--publish: {item!r} is not a port mapping; use {PUBLISH_ACCEPTED}")
            continue
        hport, cport = int(m["hport"]), int(m["cport"])
        ip = m["ip"] or "127.0.0.1"
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            errors.append(f"--publish: {ip!r} is not an IPv4 address; use {PUBLISH_ACCEPTED}")
            continue
        if not (1 <= hport <= 65535 and 1 <= cport <= 65535):
            errors.append(f"--publish: {item!r} has a port out of range; use {PUBLISH_ACCEPTED}")
            continue
        pub = Publish(ip, hport, cport, m["proto"] or "tcp")
        if any((p.host_port, p.proto) == (pub.host_port, pub.proto) for p in out):
            errors.append(f"--publish: host port {hport}/{pub.proto} is given twice")
            continue
        problem = port_problem(pub)
        if problem:
            errors.append(f"--publish: {item}: {problem}")
            continue
        out.append(pub)
    return out


def port_problem(pub: Publish) -> str | None:
    """Why the host cannot listen on pub's address and port (None when it can)."""
    kind = socket.SOCK_STREAM if pub.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((pub.host_ip, pub.host_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"host port {pub.host_ip}:{pub.host_port}/{pub.proto} is already bound; choose a free port"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{pub.host_ip} is not an address of this host; use 127.0.0.1 or a host address"
            return f"cannot bind {pub.host_ip}:{pub.host_port}: {exc.strerror}"
    return None


def configure_extra_nics(lxd: Lxd, name: str, devices: dict[str, dict[str, Any]]) -> list[str]:
    """Run a DHCP client on eth1... where the image only configures eth0 (the busybox image).

    Adds a respawn line per NIC to the container's /etc/inittab and asks init to re-read it
    (SIGHUP), so the clients also come back after a restart. Returns the NICs configured.
    """
    extra = sorted(d.get("name", k) for k, d in devices.items()
                   if d.get("type") == "nic" and d.get("name", k) != "eth0")
    if not extra or lxd.exec(name, ["grep", "-q", "dhcp-eth0", "/etc/inittab"]).exit_code != 0:
        return []
    lxd.push_file(name, NIC_SCRIPT, NIC_SCRIPT_BODY, mode=0o755)
    lines = "".join(f"::respawn:/sbin/udhcpc -f -S -i {nic} -s {NIC_SCRIPT} -x hostname:{name}\n"
                    for nic in extra)
    lxd.exec(name, ["sh", "-c", f"grep -q {shlex.quote(f' -i {extra[0]} ')} /etc/inittab || "
                                f"printf %s {shlex.quote(lines)} >> /etc/inittab; kill -HUP 1"])

    def leased() -> bool:
        inst = Instance.from_state(name, lxd.instance_state(name))
        return all(any(a.get("family") == "inet" for a in inst.nic_state(n).get("addresses") or [])
                   for n in extra)
    wait_until(leased, 15, interval=0.1)
    return extra
