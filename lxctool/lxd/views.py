"""Typed, read-only views of LXD records: one place that knows where a record keeps a value.

A view wraps the JSON record LXD returned (never fetches anything itself: no I/O hidden behind
an attribute) and answers in plain types: `Instance.ipv4` is always a list, `.expanded_config`
always a mapping. Views are frozen; the raw record stays reachable as `.record`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lxctool.core.names import ISOLATED_KEY, MANAGED_KEY, lxc_name

_EMPTY: Mapping[str, Any] = {}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def ipv4_of_state(state: Mapping[str, Any] | None, skip: Iterable[str] = ("lo",)) -> list[str]:
    """Global IPv4 addresses in an instance state record."""
    out = []
    for nic, info in _map(_map(state).get("network")).items():
        if nic in skip:
            continue
        for addr in _map(info).get("addresses") or []:
            if addr.get("family") == "inet" and addr.get("scope") == "global":
                out.append(addr["address"])
    return out


def used_by_split(urls: Iterable[str]) -> tuple[list[str], list[str]]:
    """(instance names, other names) from a used_by list of API URLs."""
    insts: list[str] = []
    others: list[str] = []
    for url in urls:
        path = url.split("?")[0]
        (insts if path.startswith("/1.0/instances/") else others).append(path.rsplit("/", 1)[-1])
    return insts, others


@dataclass(frozen=True)
class Instance:
    """An instance record (GET /1.0/instances/NAME, or one item of recursion=1/2), with its state
    when the record carries one (recursion=2) or one was added with `with_state`."""

    record: Mapping[str, Any]
    project: str | None = None
    _state: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_state(cls, name: str, state: Mapping[str, Any], project: str | None = None) -> "Instance":
        """A view of a state record alone (GET .../state): status, addresses, veths, pid."""
        return cls({"name": name}, project, state)

    @property
    def name(self) -> str:
        """The instance's name."""
        return str(self.record.get("name", ""))

    @property
    def status(self) -> str:
        """LXD's status word ('Running', 'Stopped'...), from the state when there is one."""
        return str(self.state.get("status") or self.record.get("status") or "")

    @property
    def running(self) -> bool:
        """Whether it is running."""
        return self.status == "Running"

    @property
    def config(self) -> Mapping[str, str]:
        """Its own config keys (profiles' keys not included)."""
        return _map(self.record.get("config"))

    @property
    def expanded_config(self) -> Mapping[str, str]:
        """Config with its profiles' keys applied (falls back to its own config)."""
        return _map(self.record.get("expanded_config")) or self.config

    @property
    def devices(self) -> Mapping[str, Mapping[str, str]]:
        """Its own devices."""
        return _map(self.record.get("devices"))

    @property
    def expanded_devices(self) -> Mapping[str, Mapping[str, str]]:
        """Devices with its profiles' devices applied."""
        return _map(self.record.get("expanded_devices"))

    @property
    def profiles(self) -> tuple[str, ...]:
        """Its profiles, in order."""
        return tuple(self.record.get("profiles") or ())

    @property
    def location(self) -> str:
        """The cluster member it runs on ("" or "none" off a cluster)."""
        return str(self.record.get("location") or "")

    @property
    def state(self) -> Mapping[str, Any]:
        """The state record (empty when the record was read without it)."""
        return self._state if self._state is not None else _map(self.record.get("state"))

    def with_state(self, state: Mapping[str, Any] | None) -> "Instance":
        """The same view with a state record read separately (GET .../state)."""
        return Instance(self.record, self.project, _map(state))

    @property
    def managed(self) -> bool:
        """Whether lxctool created it (its own config carries the marker)."""
        return self.config.get(MANAGED_KEY) == "true"

    @property
    def ipv4(self) -> list[str]:
        """Global IPv4 addresses from the state (empty when stopped or no state was read)."""
        return ipv4_of_state(self.state)

    def nic_state(self, nic: str = "eth0") -> Mapping[str, Any]:
        """The state of one NIC inside the container (addresses, hwaddr, host_name)."""
        return _map(_map(self.state.get("network")).get(nic))

    def veth(self, nic: str = "eth0") -> str | None:
        """The host-side veth of a NIC (renamed at each start): from the state, else, while running,
        from volatile.NIC.host_name."""
        volatile = self.config.get(f"volatile.{nic}.host_name") if self.running else None
        return self.nic_state(nic).get("host_name") or volatile or None

    @property
    def host_veth(self) -> str | None:
        """The host-side veth of eth0 while running."""
        return self.veth("eth0")

    @property
    def lxc_name(self) -> str:
        """The name LXC (and so its cgroups) uses: project-prefixed outside the default project."""
        return lxc_name(self.name, self.project)

    @property
    def init_pid(self) -> int | None:
        """The PID of its init on the host (None when stopped or no state was read)."""
        pid = self.state.get("pid")
        return int(pid) if isinstance(pid, int) and pid > 0 else None

    def nics(self) -> dict[str, Mapping[str, str]]:
        """Its expanded NIC devices by device name."""
        return {k: d for k, d in self.expanded_devices.items() if d.get("type") == "nic"}

    @property
    def root_pool(self) -> str | None:
        """The storage pool of its root disk."""
        return _map(self.expanded_devices.get("root")).get("pool") or None


@dataclass(frozen=True)
class _Shared:
    """What network and profile records have alike: a name, config keys, the instances using it."""

    record: Mapping[str, Any]

    @property
    def name(self) -> str:
        """Its name."""
        return str(self.record.get("name", ""))

    @property
    def config(self) -> Mapping[str, str]:
        """Its config keys."""
        return _map(self.record.get("config"))

    @property
    def used_by_instances(self) -> list[str]:
        """Names of the instances using it."""
        return used_by_split(self.record.get("used_by") or [])[0]


@dataclass(frozen=True)
class Network(_Shared):
    """A network record (GET /1.0/networks/NAME)."""

    @property
    def status(self) -> str | None:
        """LXD's status word ('Created'...)."""
        return self.record.get("status")

    @property
    def lxd_managed(self) -> bool:
        """Whether LXD manages it (a bridge LXD made, not a host interface)."""
        return bool(self.record.get("managed"))

    @property
    def lxctool(self) -> bool:
        """Whether lxctool made it (or adopted it: lxctool0 carries the same marker)."""
        return self.config.get(MANAGED_KEY) == "true"

    @property
    def isolated(self) -> bool:
        """Whether it is meant to forward nothing out."""
        return self.config.get(ISOLATED_KEY) == "true"

    @property
    def ipv4_interface(self) -> ipaddress.IPv4Interface | None:
        """Gateway/prefix of its IPv4 subnet (None when it has none or LXD picks it: 'auto')."""
        cidr = self.config.get("ipv4.address")
        return ipaddress.IPv4Interface(cidr) if cidr and cidr not in ("none", "auto") else None

    @property
    def used_by_profiles(self) -> list[str]:
        """Names of the profiles (and anything else not an instance) using it."""
        return used_by_split(self.record.get("used_by") or [])[1]


@dataclass(frozen=True)
class Profile(_Shared):
    """A profile record (GET /1.0/profiles/NAME)."""

    @property
    def devices(self) -> Mapping[str, Mapping[str, str]]:
        """Its devices."""
        return _map(self.record.get("devices"))

    @property
    def description(self) -> str:
        """Its description."""
        return str(self.record.get("description") or "")


@dataclass(frozen=True)
class Image:
    """An image record (GET /1.0/images/FINGERPRINT)."""

    record: Mapping[str, Any]

    @property
    def fingerprint(self) -> str:
        """Its fingerprint."""
        return str(self.record.get("fingerprint", ""))

    @property
    def aliases(self) -> list[str]:
        """Its alias names."""
        return [a.get("name", "") for a in self.record.get("aliases") or []]

    @property
    def properties(self) -> Mapping[str, str]:
        """Its properties (lxctool.hash, lxctool.recipe...)."""
        return _map(self.record.get("properties"))

    @property
    def size(self) -> int | None:
        """Its size in bytes."""
        return self.record.get("size")

    @property
    def created_at(self) -> str | None:
        """When it was made, as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
        return (self.record.get("created_at") or "")[:19].replace("T", " ") or None
