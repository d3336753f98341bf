"""The planner's vocabulary: ops (OpKind, Op), desired state and observed state. Plain data, no I/O.

Import these from lxctool.core.plan (which re-exports them); they live here to keep plan.py short.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Protocol

from lxctool.core.names import FILE_PROFILE_PREFIX, MANAGED_KEY

HASH_KEY = "user.lxctool.hash"   # the desired config's hash, written at create and update-live
LIVE_PREFIXES = ("limits.", "user.", "environment.")
# raw.lxc holds only lxctool's net-out start-host hook line; LXD takes it on a running
# container (it acts at the next start) and the executor applies the shaping now
LIVE_KEYS = ("raw.lxc",)
IGNORED_PREFIXES = ("volatile.", "image.")  # LXD writes these itself
MISSING = "missing"  # the reason of an ensure-* op that creates (the handler creates rather than updates)


class OpKind(str, Enum):
    """What an op does; the value is the user-visible spelling."""

    BUILD_IMAGE = "build-image"
    INSTALL_HOOK = "install-hook"
    ENSURE_ISOLATION = "ensure-isolation"
    ENSURE_NETWORK = "ensure-network"
    ENSURE_PROFILE = "ensure-profile"
    ENSURE_VOLUME = "ensure-volume"
    CREATE = "create"
    UPDATE_LIVE = "update-live"
    RECREATE = "recreate"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    DELETE = "delete"
    DELETE_NETWORK = "delete-network"
    DELETE_PROFILE = "delete-profile"
    DETACH_NIC = "detach-nic"          # remove a container's NICs on a network (network delete --force)
    NOOP = "noop"
    WAIT_IPV4 = "wait-ipv4"

    def __str__(self) -> str:
        return self.value


def kind_name(kind: OpKind | str) -> str:
    """An op kind as its spelling (stacks add kinds of their own as plain strings)."""
    return kind.value if isinstance(kind, OpKind) else str(kind)


def _scalar(v: Any) -> str | None:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return None if isinstance(v, dict) else str(v)


@dataclass(frozen=True)
class Op:
    """One change to make on the LXD host. detail is JSON-able display data, never a secret;
    payload is what the executor's handler needs (not shown, not compared)."""

    kind: OpKind | str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    after: tuple[str, ...] = ()
    payload: Any = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """One human line."""
        keys = ", ".join(f"{k}={s}" for k, v in sorted(self.detail.items()) if (s := _scalar(v)) is not None)
        return (f"{kind_name(self.kind)} {self.target}" + (f" ({keys})" if keys else "")
                + (f": {self.reason}" if self.reason else ""))

    def as_dict(self) -> dict[str, Any]:
        """The op as JSON-able data."""
        return {"kind": kind_name(self.kind), "target": self.target, "detail": dict(self.detail),
                "reason": self.reason, "after": list(self.after)}


def clean_config(config: Mapping[str, str]) -> dict[str, str]:
    """Config without LXD's own keys, the hash key and empty (unset) values."""
    return {k: v for k, v in config.items()
            if v != "" and k != HASH_KEY and not k.startswith(IGNORED_PREFIXES)}


@dataclass(frozen=True)
class DesiredInstance:
    """One container as it should be. config/devices are the instance's own (not its profiles')."""

    name: str
    image: str
    config: Mapping[str, str]
    devices: Mapping[str, Mapping[str, str]]
    profiles: tuple[str, ...]
    running: bool = True
    wait_ipv4: bool = False          # wait for an IPv4 (and the image's readiness check) after start
    ipv4: str | None = None          # the fixed address to wait for
    timeout: float = 60.0
    # the cluster member it must run on (None: wherever LXD puts it); compared with the observed
    # location, not hashed: moving a container is a recreate, not a config change
    member: str | None = None

    def config_hash(self) -> str:
        """Hash of what defines the container, stored in user.lxctool.hash."""
        # the image is compared by fingerprint (volatile.base_image), not by alias
        data = {"config": clean_config(self.config), "profiles": list(self.profiles),
                "devices": {d: dict(v) for d, v in self.devices.items()}}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def body(self) -> dict[str, Any]:
        """The LXD create request, the hash recorded in its config."""
        return {"name": self.name, "type": "container", "source": {"type": "image", "alias": self.image},
                "profiles": list(self.profiles), "config": {**self.config, HASH_KEY: self.config_hash()},
                "devices": {d: dict(v) for d, v in self.devices.items()}}


@dataclass(frozen=True)
class DesiredNetwork:
    """A bridge as it should be."""

    name: str
    config: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class DesiredProfile:
    """An LXD profile as it should be."""

    name: str
    config: Mapping[str, str]
    devices: Mapping[str, Mapping[str, str]]
    description: str = ""

    def content_hash(self) -> str:
        """Short hash of everything the profile gives its containers (config, devices, description)."""
        data = {"config": dict(self.config), "devices": {d: dict(v) for d, v in self.devices.items()},
                "description": self.description}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def content_named(self) -> bool:
        """Whether its name ends in its content hash (a profile made from a file: never rewritten)."""
        return self.name.endswith("-" + self.content_hash())

    def matches(self, rec: Mapping[str, Any]) -> bool:
        """Whether an LXD profile record has exactly this content."""
        return (dict(rec.get("config") or {}) == dict(self.config)
                and (rec.get("devices") or {}) == {d: dict(v) for d, v in self.devices.items()}
                and (rec.get("description") or "") == self.description)


def file_profile(stem: str, config: Mapping[str, str], devices: Mapping[str, Mapping[str, str]],
                 description: str) -> DesiredProfile:
    """The LXD profile made from limit profile file STEM.yaml, named lxctool-STEM-<content hash>.

    Named by content, not by file name alone: /a/small.yaml and /b/small.yaml with other limits
    become two profiles, so a launch never changes the limits of containers that used the other
    file, and launches of one file share one profile (creating it twice is creating the same thing).
    """
    body = DesiredProfile("", config, devices, description)
    return DesiredProfile(f"{file_profile_prefix(stem)}{body.content_hash()}", config, devices, description)


def file_profile_prefix(stem: str) -> str:
    """The name every LXD profile made from a file STEM.yaml starts with."""
    return f"{FILE_PROFILE_PREFIX}{stem}-"


@dataclass(frozen=True)
class DesiredVolume:
    """A custom storage volume as it should be."""

    pool: str
    name: str
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Desired:
    """Everything that should exist. images: recipe names to build (when out of date)."""

    instances: tuple[DesiredInstance, ...] = ()
    networks: tuple[DesiredNetwork, ...] = ()
    profiles: tuple[DesiredProfile, ...] = ()
    volumes: tuple[DesiredVolume, ...] = ()
    images: tuple[str, ...] = ()


class InstanceView(Protocol):
    """What an observed instance is made from: lxd/views.Instance (core reads no LXD record itself)."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def config(self) -> Mapping[str, str]: ...
    @property
    def devices(self) -> Mapping[str, Mapping[str, str]]: ...
    @property
    def profiles(self) -> tuple[str, ...]: ...
    @property
    def expanded_config(self) -> Mapping[str, str]: ...
    @property
    def expanded_devices(self) -> Mapping[str, Mapping[str, str]]: ...
    @property
    def location(self) -> str: ...


@dataclass(frozen=True)
class ObservedInstance:
    """An existing container as LXD reports it (its own config and devices, not expanded)."""

    name: str
    status: str
    config: Mapping[str, str] = field(default_factory=dict)
    devices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    profiles: tuple[str, ...] = ()
    expanded_config: Mapping[str, str] = field(default_factory=dict)
    expanded_devices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    location: str = ""               # cluster member it runs on ("" or "none" off a cluster)

    @classmethod
    def from_view(cls, view: InstanceView) -> "ObservedInstance":
        """From a typed view of an LXD instance record (lxd/views.Instance)."""
        return cls(view.name, view.status, dict(view.config), dict(view.devices), view.profiles,
                   dict(view.expanded_config), dict(view.expanded_devices), view.location)

    @property
    def running(self) -> bool:
        """Whether it runs."""
        return self.status == "Running"

    @property
    def managed(self) -> bool:
        """Whether lxctool created it."""
        return self.config.get(MANAGED_KEY) == "true"

    @property
    def base_image(self) -> str | None:
        """Fingerprint of the image it was made from."""
        return self.config.get("volatile.base_image")


@dataclass(frozen=True)
class HostFacts:
    """What the host can enforce (None: not probed, because nothing asked for it)."""

    cpus: int = 1
    tc_police: bool | None = None
    ifb: bool | None = None
    swap_accounting: bool | None = None


@dataclass(frozen=True)
class ProfileFile:
    """A limit profile file, read: its stem (STEM.yaml), limits (None when invalid) and problems."""

    stem: str
    filename: str
    limits: Any = None
    description: str = ""
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observed:
    """What exists now: only the objects the spec names (observe/state.py gathers it)."""

    instances: Mapping[str, ObservedInstance] = field(default_factory=dict)
    networks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    volumes: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    images: Mapping[str, str] = field(default_factory=dict)          # alias -> fingerprint
    pool_drivers: Mapping[str, str] = field(default_factory=dict)
    isolation_missing: frozenset[str] = frozenset()                   # isolated bridges without their rule
    hook_installed: bool = True                                       # net-out hook file present and current
    hook_path: str = "/var/lib/lxctool/hooks/net-out"
    caps: HostFacts = field(default_factory=HostFacts)
    used_addresses: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # net -> addr -> holder
    profile_files: Mapping[str, ProfileFile] = field(default_factory=dict)         # --profile name -> file
    recipes: tuple[str, ...] = ()
    recipe_dir: str = ""
    profile_dir: str = ""
    profile_choices: tuple[str, ...] = ()
