"""What a stack file means, checked before any change and without the host (check_stack); the
checks against what the host has are in host_check.py. Each returns every problem, by its path."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from lxctool.core.spec import NAME_ACCEPTED, valid_instance_name
from lxctool.stacks import model as m
from lxctool.stacks import templates

NAME_RE_TEXT = "lowercase letters, digits and hyphens, starting with a letter"


def _name_ok(name: str) -> bool:
    return name == name.lower() and valid_instance_name(name) and "--" not in name


def check_stack(stack: m.Stack) -> list[str]:
    """Every problem that needs no host: names, replicas, dependencies, addresses, templates."""
    errors: list[str] = []
    if not _name_ok(stack.name):
        errors.append(f"name: {stack.name!r} is not a valid stack name; use {NAME_RE_TEXT}")
    names = {s.name for s in stack.services}
    for svc in stack.services:
        errors += _check_service(stack, svc, names)
    errors += _cycles(stack.services)
    errors += _addresses(stack)
    errors += _templates(stack, names)
    for net in stack.networks:
        if not _name_ok(net.name):
            errors.append(f"networks.{net.name}: not a valid network name; use {NAME_RE_TEXT}")
    for vol in stack.volumes:
        if not _name_ok(vol.name):
            errors.append(f"volumes.{vol.name}: not a valid volume name; use {NAME_RE_TEXT}")
    if stack.monitor and stack.monitor.influxdb not in names:
        errors.append(f"monitor.influxdb: {stack.monitor.influxdb!r} is not a service of this stack; "
                      f"use one of {', '.join(sorted(names))}")
    return errors


def _check_service(stack: m.Stack, svc: m.Service, names: set[str]) -> list[str]:
    label = f"services.{svc.name}"
    errors = []
    if not _name_ok(svc.name):
        errors.append(f"{label}: {svc.name!r} is not a valid service name; use {NAME_RE_TEXT}")
    elif _name_ok(stack.name):
        longest = m.instance_name(stack.name, svc.name, max(svc.replicas, 1))
        if not valid_instance_name(longest):
            errors.append(f"{label}: container name {longest!r} is too long for LXD; "
                          f"shorten the stack or service name ({NAME_ACCEPTED})")
    if svc.replicas < 1:
        errors.append(f"{label}.replicas: {svc.replicas} must be at least 1")
    if svc.publish and svc.replicas > 1:
        errors.append(f"{label}.publish: a host port reaches one container, this service has "
                      f"{svc.replicas} replicas; publish from a single-replica service (a load balancer)")
    for dep, _ in svc.depends_on:
        if dep not in names:
            errors.append(f"{label}.depends_on.{dep}: no such service; use one of {', '.join(sorted(names))}")
        elif dep == svc.name:
            errors.append(f"{label}.depends_on.{dep}: a service cannot depend on itself")
    for att in svc.networks:
        if att.ips and len(att.ips) != svc.replicas:
            errors.append(f"{label}.networks.{att.network}.ips: {len(att.ips)} addresses for "
                          f"{svc.replicas} replicas; give one address per replica, or none for DHCP")
    seen_pub: set[tuple[int, str]] = set()
    for pub in svc.publish:
        if (pub.host_port, pub.proto) in seen_pub:
            errors.append(f"{label}.publish: host port {pub.host_port}/{pub.proto} is given twice")
        seen_pub.add((pub.host_port, pub.proto))
    paths = [p for _, p in svc.volumes]
    if len(set(paths)) != len(paths):
        errors.append(f"{label}.volumes: two volumes on one path; give each volume its own path")
    if svc.healthcheck and svc.healthcheck.command == () and svc.healthcheck.http_port is None \
            and svc.healthcheck.tcp_port is None:
        errors.append(f"{label}.healthcheck: give exactly one of command, http, tcp")
    return errors


def _cycles(services: tuple[m.Service, ...]) -> list[str]:
    """One error per dependency cycle, naming its members in order."""
    deps = {s.name: [d for d, _ in s.depends_on if d != s.name] for s in services}
    found: list[str] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in deps.get(node, []):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                found.append(f"services.{nxt}.depends_on: dependency cycle {' -> '.join(cycle)}; "
                             "remove one of these dependencies")
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in deps:
        if name not in state:
            visit(name)
    return found


def _addresses(stack: m.Stack) -> list[str]:
    """Fixed addresses: valid, inside their stack network's subnet, not its gateway, not twice."""
    errors = []
    seen: dict[tuple[str, str], str] = {}
    for svc in stack.services:
        for att in svc.networks:
            net = stack.network(att.network)
            for i, ip in enumerate(att.ips):
                label = f"services.{svc.name}.networks.{att.network}.{'ips.' + str(i) if len(att.ips) > 1 or svc.replicas > 1 else 'ip'}"
                try:
                    addr = ipaddress.IPv4Address(ip)
                except ValueError:
                    errors.append(f"{label}: {ip!r} is not an IPv4 address")
                    continue
                if net is not None:
                    sub = net.subnet.network
                    if addr not in sub or addr in (sub.network_address, sub.broadcast_address):
                        errors.append(f"{label}: {ip} is outside network {att.network} ({sub}); "
                                      f"use a host address of {sub}")
                    elif addr == net.subnet.ip:
                        errors.append(f"{label}: {ip} is the bridge's own address; use another address of {sub}")
                key = (att.network, ip)
                if key in seen:
                    errors.append(f"{label}: {ip} is also given to {seen[key]}; give each replica its own address")
                else:
                    seen[key] = f"services.{svc.name}"
    return errors


def service_templates(svc: m.Service) -> Iterable[tuple[str, str, bool]]:
    """(path, template text, may hold secrets) of every templated value of a service."""
    label = f"services.{svc.name}"
    for k, v in svc.environment:
        yield f"{label}.environment.{k}", v, False
    for i, f in enumerate(svc.provision.files):
        text = f.content if f.content is not None else source_text(f)
        if text is not None:
            where = "content" if f.content is not None else f"source ({f.source.name if f.source else ''})"
            yield f"{label}.provision.files.{i}.{where}", text, True
    for i, cmd in enumerate(svc.provision.commands):
        for j, arg in enumerate(cmd):
            yield f"{label}.provision.commands.{i}.{j}", arg, True
    for k, v in svc.provision.env:
        yield f"{label}.provision.env.{k}", v, True


def source_text(f: m.ProvisionFile) -> str | None:
    """A provision source file's text (a template like content:), or None for a binary file."""
    if f.source is None:
        return None
    try:
        return f.source.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _templates(stack: m.Stack, names: set[str]) -> list[str]:
    errors = []
    secrets = set(stack.secrets)
    for svc in stack.services:
        for path, text, secret_ok in service_templates(svc):
            problem = templates.syntax_error(text)
            if problem:
                errors.append(f"{path}: {problem}")
                continue
            for ref in sorted(templates.referenced_services(text) - names):
                errors.append(f"{path}: template names service {ref!r}, which is not in this stack; "
                              f"use one of {', '.join(sorted(names))}")
            for ref in sorted(templates.referenced_services(text, addresses_only=True) & names):
                if ref != svc.name and not _fixed(stack.service(ref)) and ref not in _needs(stack, svc.name):
                    errors.append(f"{path}: the address of {ref} is known only once it runs (DHCP); add "
                                  f"{ref} to services.{svc.name}.depends_on, or give {ref} a fixed ip")
            leaked = templates.variables(text) & secrets
            if leaked and not secret_ok:
                errors.append(f"{path}: secret ${{{sorted(leaked)[0]}}} would be stored in LXD config in "
                              "clear; pass it through provision.env or a provision file instead")
    return errors


def _fixed(svc: m.Service) -> bool:
    """Whether every replica's first address is given in the file."""
    return bool(svc.networks and svc.networks[0].ips)


def _needs(stack: m.Stack, name: str) -> set[str]:
    """Every service name depends on, directly or not."""
    out: set[str] = set()
    todo = [name]
    while todo:
        for dep, _ in stack.service(todo.pop()).depends_on:
            if dep not in out and any(s.name == dep for s in stack.services):
                out.add(dep)
                todo.append(dep)
    return out


def used_variables(stack: m.Stack) -> set[str]:
    """Every ${VAR} the stack's templates use."""
    out: set[str] = set()
    for svc in stack.services:
        for _, text, _ in service_templates(svc):
            out |= templates.variables(text)
    return out
