"""Options and YAML -> validated, frozen specs. Every error is collected, each named by its field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from lxctool.core import units
from lxctool.core.errors import SpecError
from lxctool.core.names import check_container
from lxctool.core.nics import Attachment, Publish
from lxctool.core.units import Allowance, CpuSpec, DiskRate, UnitError

NAME_ACCEPTED = "1-63 letters, digits and hyphens, starting with a letter and not ending with a hyphen"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container, in ints and small value types (None = not set)."""

    cpu: CpuSpec | None = None
    cpu_allowance: Allowance | None = None
    memory: int | None = None
    swap: bool | None = None
    processes: int | None = None
    disk: int | None = None
    disk_read: DiskRate | None = None
    disk_write: DiskRate | None = None
    net_in: int | None = None
    net_out: int | None = None

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def merged(self, override: "Limits") -> "Limits":
        """These limits with every field that override sets replaced."""
        changes = {f.name: getattr(override, f.name) for f in fields(override)
                   if getattr(override, f.name) is not None}
        return replace(self, **changes)


def _positive_int(value: Any) -> int:
    what = f"use a whole number from 1 to {units.PIDS_MAX}"
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"-?\d{1,12}", text, flags=re.ASCII):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise UnitError(f"{shown} is not a whole number; {what}")
    n = int(text)
    if n < 1:
        raise UnitError(f"{text!r} must be at least 1; {what}")
    if n > units.PIDS_MAX:
        raise UnitError(f"{text!r} is above the kernel's PID_MAX_LIMIT; {what}")
    return n


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "yes", "on", "1"):
        return True
    if s in ("false", "no", "off", "0"):
        return False
    raise UnitError(f"{value!r} is not a boolean; use true or false")


# key as written in files (and as the launch option without '--') -> (Limits field, parser)
LIMIT_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "cpu": ("cpu", units.parse_cpu),
    "cpu-allowance": ("cpu_allowance", units.parse_allowance),
    "mem": ("memory", units.parse_size),
    "swap": ("swap", _boolean),
    "processes": ("processes", _positive_int),
    "disk": ("disk", units.parse_size),
    "disk-read": ("disk_read", units.parse_disk_rate),
    "disk-write": ("disk_write", units.parse_disk_rate),
    "net-in": ("net_in", units.parse_bit_rate),
    "net-out": ("net_out", units.parse_bit_rate),
}
# 'memory' reads better in a YAML file; both spellings are accepted there
LIMIT_ALIASES = {"memory": "mem"}


def parse_limits(raw: Mapping[str, Any], label: Callable[[str], str], errors: list[str],
                 *, unknown_ok: bool = False) -> Limits:
    """Parse raw limit values (None = unset); append 'field: problem' lines to errors."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        key_n = LIMIT_ALIASES.get(key, key)
        if key_n not in LIMIT_KEYS:
            if not unknown_ok:
                errors.append(f"{label(key)}: unknown limit; use one of {', '.join(LIMIT_KEYS)}")
            continue
        if value is None:
            continue
        attr, parser = LIMIT_KEYS[key_n]
        try:
            values[attr] = parser(value)
        except UnitError as exc:
            errors.append(f"{label(key)}: {exc}")
    limits = Limits(**values)
    if limits.cpu is not None and limits.cpu.quota is not None and limits.cpu_allowance is not None:
        errors.append(f"{label('cpu')}: a fractional CPU value is already a hard quota; "
                      f"give either it or {label('cpu-allowance')}, not both")
    return limits


def check_limits_for_host(limits: Limits, host_cpus: int, label: Callable[[str], str]) -> list[str]:
    """Errors for limits that cannot fit this host's CPUs."""
    errors = []
    cpu = limits.cpu
    if cpu is not None:
        if cpu.count is not None and cpu.count > host_cpus:
            errors.append(f"{label('cpu')}: {cpu.count} CPUs asked, this host has {host_cpus}; "
                          f"use 1 to {host_cpus}")
        if cpu.cpuset is not None and max(cpu.cpuset) >= host_cpus:
            errors.append(f"{label('cpu')}: CPU {max(cpu.cpuset)} does not exist; "
                          f"this host has CPUs 0-{host_cpus - 1}")
        if cpu.quota is not None and cpu.quota.cpus is not None and cpu.quota.cpus > host_cpus:
            errors.append(f"{label('cpu')}: a quota of {cpu.quota.cpus:g} CPUs exceeds this host's "
                          f"{host_cpus}; use at most {host_cpus}")
    allowance = limits.cpu_allowance
    if allowance is not None and allowance.hard and allowance.cpus is not None:
        if allowance.cpus > host_cpus:
            errors.append(f"{label('cpu-allowance')}: {allowance.lxd()} is {allowance.cpus:g} CPUs, "
                          f"this host has {host_cpus}; keep the quota at most {host_cpus} x the period")
    return errors


@dataclass(frozen=True)
class Floor:
    """The smallest limits an image family starts with, as measured on this kind of host."""

    memory: int
    processes: int
    memory_seen: str
    processes_seen: str


# Measured with scripts/measure-floors.sh (LXD 5.0.2, kernel 6.18, 2026-11-29): a try passes when
# the container runs, gets its IPv4 and runs `true` through exec. Below these, LXD either fails
# the start or leaves a container that never comes up; the floor is the lowest value that passed.
FLOORS: dict[str, Floor] = {
    "busybox": Floor(memory=2_500_000, processes=4,
                     memory_seen="busybox started with 2300kB and 2500kB, not with 2100kB",
                     processes_seen="busybox started with 4, not with 3"),
    "debian": Floor(memory=22_000_000, processes=14,
                    memory_seen="debian (systemd) started with 22MB, not with 20MB",
                    processes_seen="debian (systemd) started with 14, not with 12"),
}


def check_floors(limits: Limits, family: str, label: Callable[[str], str]) -> list[str]:
    """Errors for memory or process limits below what a FAMILY container needs to start here."""
    floor = FLOORS.get(family, FLOORS["busybox"])
    errors = []
    if limits.memory is not None and limits.memory < floor.memory:
        errors.append(f"{label('mem')}: {units.format_size(limits.memory)} is below what a {family} container "
                      f"needs to start (measured here: {floor.memory_seen}); use at least "
                      f"{units.format_size(floor.memory)}")
    if limits.processes is not None and limits.processes < floor.processes:
        errors.append(f"{label('processes')}: {limits.processes} is below what a {family} container needs "
                      f"to start (measured here: {floor.processes_seen}); use at least {floor.processes}")
    return errors


def valid_instance_name(name: str) -> bool:
    """LXD's instance name rule (hostname-like)."""
    return not check_container(name)


def check_name(name: str, label: str = "NAME") -> list[str]:
    """Errors for a container name LXD would reject (core/names.py holds every naming rule)."""
    return check_container(name, label)


@dataclass(frozen=True)
class LaunchSpec:
    """Everything `launch` needs, validated."""

    name: str
    image: str = "busybox"
    limits: Limits = field(default_factory=Limits)
    profiles: tuple[str, ...] = ()
    network: str = "lxctool0"
    ip: str | None = None
    wait: bool = True
    timeout: float = 60.0
    build: bool = False              # build the image from its recipe first (skipped when current)
    attachments: tuple[Attachment, ...] = ()  # NICs (default: one on network, with ip)
    publish: tuple[Publish, ...] = ()


def option_label(key: str) -> str:
    """How a limit key is named on the command line."""
    return f"--{key}"


def profile_limits(data: Any, path: Path) -> Limits:
    """A limit profile's parsed YAML (launch options as keys) as Limits, or raise SpecError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a profile is a mapping of limit names to values")
    data = {k: v for k, v in data.items() if k != "description"}
    errors: list[str] = []
    limits = parse_limits(data, lambda k: f"{path.name}: {k}", errors)
    if errors:
        raise SpecError(errors)
    return limits
