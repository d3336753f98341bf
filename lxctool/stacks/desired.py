"""A stack -> the planner's `Desired`: instances STACK-SERVICE-N, networks and volumes STACK-NAME,
file profiles lxctool-P-HASH, every object labelled with user.lxctool.stack (containers also with
user.lxctool.service). Pure: what it needs from the host comes in a HostBase."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from lxctool.core import limits as limitmap
from lxctool.core.model import file_profile
from lxctool.core.names import BASE_PROFILE, MANAGED_KEY
from lxctool.core.plan import Desired, DesiredInstance, DesiredNetwork, DesiredProfile, DesiredVolume
from lxctool.core.spec import Limits
from lxctool.stacks import model as m
from lxctool.stacks import placement
from lxctool.stacks import templates
from lxctool.host import shaping as netshape
from lxctool.net.network import NetworkSpec
from lxctool.core.units import format_size

PROVISION_KEY = "user.lxctool.provision"  # hash of the provision templates: a change re-runs them


@dataclass(frozen=True)
class FileProfile:
    """A profiles/P.yaml file, read: its limits and description."""

    name: str
    limits: Limits
    description: str = ""


@dataclass(frozen=True)
class HostBase:
    """What desired state depends on from the host: the base profile's devices, profile files,
    the pool for volumes, whether tc police exists (net-out), the recipes to build, the members."""

    base_devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profile_files: Mapping[str, FileProfile] = field(default_factory=dict)
    lxd_profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pool: str = "lxctool"
    tc_police: bool = False
    build: tuple[str, ...] = ()          # images to build first (recipes without an image yet)
    members: tuple[str, ...] = ()        # online cluster members by name (read only when placement asks)


def context(stack: m.Stack, addresses: Mapping[str, list[str]]) -> dict[str, Any]:
    """Template context: services.X.{name,names,ipv4,ipv4s}; addresses: instance -> observed IPv4s.

    A replica's address is its fixed one when the file gives it, else the one it has now, else
    UNKNOWN (a DHCP address exists only once the container runs).
    """
    services: dict[str, Any] = {}
    for svc in stack.services:
        names = m.instance_names(stack.name, svc)
        fixed = svc.networks[0].ips if svc.networks else ()
        ips = []
        for i, name in enumerate(names):
            have = list(addresses.get(name) or [])
            ips.append(fixed[i] if i < len(fixed) else (have[0] if have else templates.UNKNOWN))
        services[svc.name] = {"name": names[0], "names": names, "ipv4": ips[0], "ipv4s": ips}
    return {"services": services}


def _profile_body(fp: FileProfile, base_devices: Mapping[str, Mapping[str, Any]], tc_police: bool) -> DesiredProfile:
    """A profile file as an LXD profile, as launch makes it (net-out shaped on the host)."""
    config, dev_keys = limitmap.limits_to_lxd(fp.limits)
    netshape.split_egress(config, dev_keys, "", lambda: tc_police)
    devices = with_device_limits({k: dict(v) for k, v in base_devices.items()}, dev_keys)
    desc = f"lxctool profile from {fp.name}.yaml: {fp.description}".strip()
    return file_profile(fp.name, config, devices, desc)  # named by content, as launch names it


def with_device_limits(base: Mapping[str, Mapping[str, Any]],
                       keys: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Whole device definitions (LXD replaces devices whole) with limit keys set on top of base."""
    return {d: {**base[d], **k} for d, k in keys.items() if d in base}


def provision_hash(svc: m.Service) -> str:
    """Hash of the provision templates as written (secret values never enter it)."""
    data = {"files": [[f.path, f.content, str(f.source or ""), f.mode,
                       f.source.read_bytes().hex() if f.source and f.source.is_file() else ""]
                      for f in svc.provision.files],
            "commands": [list(c) for c in svc.provision.commands], "env": list(svc.provision.env)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def service_instances(stack: m.Stack, svc: m.Service, host: HostBase, ctx: Mapping[str, Any],
                      values: Mapping[str, str]) -> list[DesiredInstance]:
    """The desired containers of one service (environment rendered; never a secret)."""
    profiles = [BASE_PROFILE]
    expanded: dict[str, dict[str, Any]] = {k: dict(v) for k, v in host.base_devices.items()}
    for p in svc.profiles:
        if p in host.profile_files:
            desired_profile = _profile_body(host.profile_files[p], host.base_devices, host.tc_police)
            profiles.append(desired_profile.name)
            expanded.update({k: dict(v) for k, v in desired_profile.devices.items()})
        else:
            profiles.append(p)
            expanded.update({k: dict(v) for k, v in (host.lxd_profiles.get(p) or {}).get("devices", {}).items()})
    config, dev_keys = limitmap.limits_to_lxd(svc.limits)
    netshape.split_egress(config, dev_keys, "", lambda: host.tc_police)
    env = {f"environment.{k}": templates.substitute(templates.render(v, ctx), values) for k, v in svc.environment}
    config.update(env)
    config.update({MANAGED_KEY: "true", m.STACK_KEY: stack.name, m.SERVICE_KEY: svc.name,
                   "security.privileged": "false", "security.nesting": "false"})
    if not svc.provision.is_empty():
        config[PROVISION_KEY] = provision_hash(svc)
    out = []
    for n, name in enumerate(m.instance_names(stack.name, svc), start=1):
        devices: dict[str, dict[str, Any]] = {}
        fixed_ip = None
        for i, att in enumerate(svc.networks):
            base = dict(expanded.get("eth0") or {}) if i == 0 else {}
            for k in ("nictype", "parent", "ipv4.address"):
                base.pop(k, None)
            net = stack.network(att.network)
            dev = {**base, "type": "nic", "name": f"eth{i}",
                   "network": m.network_name(stack.name, att.network) if net else att.network}
            if att.ips:
                dev["ipv4.address"] = att.ips[n - 1]
                fixed_ip = fixed_ip or att.ips[n - 1]
            devices[f"eth{i}"] = dev
        nic_base = {**expanded, **devices}
        devices.update(with_device_limits(nic_base, dev_keys))
        for vol, path in svc.volumes:
            volume = next((v for v in stack.volumes if v.name == vol), m.StackVolume(vol))
            devices[f"vol-{vol}"] = {"type": "disk", "pool": volume.pool or host.pool,
                                     "source": m.volume_name(stack.name, vol), "path": path}
        for i, (host_path, target, readonly) in enumerate(svc.binds):
            devices[f"bind-{i}"] = {"type": "disk", "source": host_path, "path": target,
                                    **({"readonly": "true"} if readonly else {})}
        devices.update(pub.device() for pub in svc.publish)  # validate.py allows it on one replica only
        cfg = {**config, m.REPLICA_KEY: str(n)}
        member = placement.member_for(svc, n, host.members)
        out.append(DesiredInstance(name, svc.image, cfg, devices, tuple(profiles), running=True,
                                   wait_ipv4=True, ipv4=fixed_ip, member=member))
    return out


def build_desired(stack: m.Stack, host: HostBase, ctx: Mapping[str, Any], values: Mapping[str, str],
                  services: list[str] | None = None) -> Desired:
    """Everything the stack wants (only the named services' containers when services is given)."""
    networks = []
    for net in stack.networks:
        spec = NetworkSpec(m.network_name(stack.name, net.name), net.subnet, nat=False, isolated=net.isolated)
        networks.append(DesiredNetwork(spec.name, {**spec.lxd_config(), m.STACK_KEY: stack.name},
                                       f"lxctool network {net.name} of stack {stack.name}"))
    volumes = []
    for vol in stack.volumes:
        cfg = {m.STACK_KEY: stack.name}
        if vol.size:
            cfg["size"] = format_size(vol.size)
        volumes.append(DesiredVolume(vol.pool or host.pool, m.volume_name(stack.name, vol.name), cfg))
    used = {p for s in stack.services for p in s.profiles if p in host.profile_files}
    profiles = [_profile_body(host.profile_files[p], host.base_devices, host.tc_police) for p in sorted(used)]
    instances: list[DesiredInstance] = []
    for svc in stack.services:
        if services is None or svc.name in services:
            instances += service_instances(stack, svc, host, ctx, values)
    return Desired(tuple(instances), tuple(networks), tuple(profiles), tuple(volumes), host.build)
