"""A stack file checked against what the host has, before any change: unknown images, profiles
and networks, addresses other containers hold, host ports taken, subnets that overlap."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from lxctool.net import network as netmod
from lxctool.net.attach import port_problem
from lxctool.stacks import model as m
from lxctool.stacks import placement


@dataclass
class HostView:
    """What the host checks need, read once: aliases, profiles, networks, instances, members."""

    aliases: set[str] = field(default_factory=set)
    profiles: set[str] = field(default_factory=set)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] | None = None  # cluster members (None: not read, no placement asked)
    where: str = ""                               # the server, for messages


def check_host(stack: m.Stack, host: HostView, recipes: set[str], profile_files: set[str],
               own_ports: set[tuple[str, int, str]]) -> list[str]:
    """Unknown images/profiles/networks, addresses other containers use, host ports taken."""
    errors = []
    stack_nets = {n.name for n in stack.networks}
    own = {i["name"] for i in host.instances if (i.get("config") or {}).get(m.STACK_KEY) == stack.name}
    for svc in stack.services:
        label = f"services.{svc.name}"
        if svc.image not in host.aliases and svc.image not in recipes:
            errors.append(f"{label}.image: no image or recipe {svc.image!r}; use a recipe "
                          f"({', '.join(sorted(recipes))}) or an LXD image alias")
        for p in svc.profiles:
            if p not in profile_files and p not in host.profiles:
                errors.append(f"{label}.profiles: {p!r} is neither a file in profiles/ nor an LXD profile; "
                              f"use one of {', '.join(sorted(profile_files | host.profiles))}")
        for att in svc.networks:
            if att.network in stack_nets:
                continue
            net = host.networks.get(att.network)
            if net is None:
                errors.append(f"{label}.networks.{att.network}: not a network of this stack nor an LXD "
                              f"network; declare it under networks: or use one of {', '.join(sorted(host.networks))}")
                continue
            errors += _foreign_addresses(label, att, net, host.instances, own)
        for pub in svc.publish:
            if (pub.host_ip, pub.host_port, pub.proto) in own_ports:
                continue  # bound by this stack's own proxy device
            problem = port_problem(pub)
            if problem:
                errors.append(f"{label}.publish: {problem}")
    errors += placement.check(stack, host.members, host.where)
    for snet in stack.networks:
        lxd_name = m.network_name(stack.name, snet.name)
        have = host.networks.get(lxd_name)
        if have is not None and (have.get("config") or {}).get(m.STACK_KEY) != stack.name:
            errors.append(f"networks.{snet.name}: LXD network {lxd_name!r} exists and is not this stack's; "
                          "rename the network or the stack")
        else:
            errors += _subnet_clash(snet, host.networks, stack.name)
    return errors


def _foreign_addresses(label: str, att: m.Attachment, net: dict[str, Any],
                       instances: list[dict[str, Any]], own: set[str]) -> list[str]:
    errors = []
    used = {ip: who for ip, who in netmod.instance_addresses(net["name"], instances).items() if who not in own}
    for ip in att.ips:
        for problem in netmod.check_address(net, ip, used, f"{label}.networks.{att.network}"):
            errors.append(problem)
    return errors


def _subnet_clash(net: m.StackNetwork, networks: dict[str, dict[str, Any]], stack: str) -> list[str]:
    """A stack network whose subnet overlaps another LXD network's."""
    errors = []
    for name, other in networks.items():
        if (other.get("config") or {}).get(m.STACK_KEY) == stack:
            continue
        addr = (other.get("config") or {}).get("ipv4.address") or ""
        try:
            other_net = ipaddress.IPv4Interface(addr).network
        except ValueError:
            continue
        if other_net.overlaps(net.subnet.network):
            errors.append(f"networks.{net.name}.subnet: {net.subnet.network} overlaps network {name} "
                          f"({other_net}); choose a free private subnet")
    return errors
