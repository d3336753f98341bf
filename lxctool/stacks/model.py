"""A loaded stack as frozen dataclasses: what `load` makes from a stack file, and what a converter
(docker-compose, a later issue) must produce. No I/O here; templates are kept as written."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from lxctool.core.nics import Publish  # a service's host port: the same value as launch --publish
from lxctool.core.spec import Limits

STACK_KEY = "user.lxctool.stack"
SERVICE_KEY = "user.lxctool.service"
REPLICA_KEY = "user.lxctool.replica"
IFACE_MAX = 15  # Linux interface names (and so LXD bridge names) hold at most 15 characters


@dataclass(frozen=True)
class StackNetwork:
    """A bridge the stack creates (isolated unless asked otherwise)."""

    name: str                               # as written in the file
    subnet: ipaddress.IPv4Interface         # the bridge's own address and prefix
    isolated: bool = True


@dataclass(frozen=True)
class StackVolume:
    """An LXD custom volume the stack creates and keeps across `down` (unless --volumes)."""

    name: str
    size: int | None = None
    pool: str | None = None                 # None: the pool of the base profile's root disk


@dataclass(frozen=True)
class Attachment:
    """One NIC of a service: its network and its fixed addresses (one per replica; () = DHCP)."""

    network: str
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Healthcheck:
    """How to tell a replica is healthy: exactly one of command, http (port, path, status), tcp."""

    command: tuple[str, ...] = ()
    http_port: int | None = None
    http_path: str = "/"
    http_status: int = 200
    tcp_port: int | None = None
    interval: float = 1.0
    retries: int = 30
    timeout: float = 10.0
    start_period: float = 0.0

    def describe(self) -> str:
        """One short line for tables."""
        if self.command:
            return "command " + " ".join(self.command)
        if self.http_port is not None:
            return f"http :{self.http_port}{self.http_path} -> {self.http_status}"
        return f"tcp :{self.tcp_port}"


@dataclass(frozen=True)
class ProvisionFile:
    """A file pushed into each replica; content is a template (None when read from source)."""

    path: str
    content: str | None = None
    source: Path | None = None
    mode: int = 0o644


@dataclass(frozen=True)
class Provision:
    """Files and commands run once per replica after it is created (and again when they change)."""

    files: tuple[ProvisionFile, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    env: tuple[tuple[str, str], ...] = ()   # may hold ${SECRET}: reaches only the commands

    def is_empty(self) -> bool:
        """True when there is nothing to provision."""
        return not self.files and not self.commands


@dataclass(frozen=True)
class Service:
    """One service: replicas of one image with the same limits, networks and provisioning."""

    name: str
    image: str
    replicas: int = 1
    limits: Limits = field(default_factory=Limits)
    profiles: tuple[str, ...] = ()
    networks: tuple[Attachment, ...] = ()   # () = eth0 as the base profile has it
    volumes: tuple[tuple[str, str], ...] = ()  # (volume name, mount path)
    binds: tuple[tuple[str, str, bool], ...] = ()  # (host path, mount path, read-only): reach into the host
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, "started" | "healthy")
    environment: tuple[tuple[str, str], ...] = ()
    healthcheck: Healthcheck | None = None
    provision: Provision = field(default_factory=Provision)
    publish: tuple[Publish, ...] = ()
    logs: tuple[str, ...] = ()
    member: str | None = None               # placement.member: every replica on this cluster member
    spread: bool = False                    # placement.spread: replicas round-robin over online members


@dataclass(frozen=True)
class Monitor:
    """The host-side `lxctool monitor` that feeds an InfluxDB service of the stack."""

    influxdb: str                           # the service that runs InfluxDB
    database: str = "lxd"
    interval: float = 10.0
    port: int = 8086


@dataclass(frozen=True)
class Stack:
    """A whole stack file, validated."""

    name: str
    folder: Path                            # the stack file's folder (.env, provision sources)
    services: tuple[Service, ...]
    networks: tuple[StackNetwork, ...] = ()
    volumes: tuple[StackVolume, ...] = ()
    secrets: tuple[str, ...] = ()
    monitor: Monitor | None = None

    def service(self, name: str) -> Service:
        """The service called name (KeyError when there is none)."""
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    def network(self, name: str) -> StackNetwork | None:
        """The stack network called name, or None (an existing LXD network then)."""
        return next((n for n in self.networks if n.name == name), None)


def instance_name(stack: str, service: str, n: int) -> str:
    """STACK-SERVICE-N, N from 1."""
    return f"{stack}-{service}-{n}"


def instance_names(stack: str, svc: Service) -> list[str]:
    """Every replica's container name."""
    return [instance_name(stack, svc.name, n) for n in range(1, svc.replicas + 1)]


def network_name(stack: str, network: str) -> str:
    """STACK-NETWORK, shortened to 15 characters with a hash when longer (a bridge is an interface)."""
    full = f"{stack}-{network}"
    if len(full) <= IFACE_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:4]
    return f"{full[:IFACE_MAX - 5].rstrip('-')}-{digest}"


def volume_name(stack: str, volume: str) -> str:
    """STACK-VOLUME."""
    return f"{stack}-{volume}"


def topological_order(services: tuple[Service, ...]) -> list[list[str]]:
    """Services in waves: each wave depends only on earlier ones (cycles must be refused first)."""
    names = {s.name for s in services}
    deps = {s.name: {d for d, _ in s.depends_on if d in names} for s in services}
    done: set[str] = set()
    waves: list[list[str]] = []
    while len(done) < len(deps):
        wave = sorted(n for n, d in deps.items() if n not in done and d <= done)
        if not wave:
            raise ValueError("dependency cycle")
        waves.append(wave)
        done.update(wave)
    return waves
