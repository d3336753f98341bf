"""A launch spec (or a limits change) + observed host facts -> the desired state. No I/O here.

Every problem is collected and raised together as one SpecError, each line naming its field.
"""

from __future__ import annotations

from typing import Any, Mapping

from lxctool.core import limits as limitmap
from lxctool.core import units
from lxctool.core.errors import PreflightError, SpecError
from lxctool.core.names import BASE_PROFILE, MANAGED_KEY, SETUP_HINT
from lxctool.core.nics import Attachment, check_address, nic_devices
from lxctool.core.model import DesiredProfile, file_profile
from lxctool.core.plan import HASH_KEY, IGNORED_PREFIXES, Desired, DesiredInstance, Observed, ObservedInstance
from lxctool.core.spec import LaunchSpec, Limits, check_limits_for_host, check_name, option_label

QUOTA_DRIVERS = {"btrfs", "zfs", "lvm", "ceph"}  # LXD storage drivers that enforce a root disk size
HOOK_LINE = "lxc.hook.start-host"
RATE_KEY = limitmap.HOST_EGRESS_KEY


def pool_enforces_quota(driver: str) -> bool:
    """Whether an LXD storage driver enforces a root disk size."""
    return driver in QUOTA_DRIVERS


def with_device_limits(base: Mapping[str, Mapping[str, Any]],
                       keys: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Full device definitions (LXD replaces devices whole) with limit keys set on top of base."""
    return {dname: {**base[dname], **dkeys} for dname, dkeys in keys.items() if dname in base}


def egress_config(rate: int | None, raw_lxc: str, hook_path: str) -> dict[str, str]:
    """Config keys that make a container's egress shaped at rate by the start-host hook (None/0: unshaped)."""
    lines = [ln for ln in raw_lxc.splitlines() if not (ln.strip().startswith(HOOK_LINE) and "net-out" in ln)]
    if rate:
        lines.append(f"{HOOK_LINE} = {hook_path} {rate}")
    return {RATE_KEY: str(rate) if rate else "", "raw.lxc": "\n".join(lines) + ("\n" if lines else "")}


def split_egress(config: dict[str, str], dev_keys: dict[str, dict[str, str]], raw_lxc: str,
                 police: bool, hook_path: str, nic: str = "eth0") -> None:
    """Move a NIC's limits.egress to host-side shaping keys when LXD cannot police (in place)."""
    if "limits.egress" not in dev_keys.get(nic, {}) or police:
        return
    rate = units.parse_bit_rate(dev_keys[nic].pop("limits.egress"))
    if not dev_keys[nic]:
        del dev_keys[nic]
    config.update(egress_config(rate, raw_lxc, hook_path))


def capability_errors(limits: Limits, devices: Mapping[str, Mapping[str, Any]], observed: Observed) -> list[str]:
    """Limits this host cannot enforce, each naming the missing feature."""
    caps = observed.caps
    errors = []
    if limits.net_out is not None and not caps.tc_police and not caps.ifb:
        errors.append("--net-out: this kernel has neither the tc police action (CONFIG_NET_ACT_POLICE) "
                      "LXD needs for limits.egress nor ifb devices for host-side shaping; see `lxctool doctor`")
    if limits.disk is not None:
        pool_name = (devices.get(limitmap.ROOT_DEVICE) or {}).get("pool")
        driver = observed.pool_drivers.get(pool_name or "", "unknown")
        if not pool_enforces_quota(driver):
            errors.append(f"--disk: storage pool {pool_name!r} uses the {driver} driver, which does not "
                          "enforce a root disk size; see `lxctool doctor`")
    if limits.swap and not caps.swap_accounting:
        errors.append("--swap: this kernel does not account swap per cgroup; see `lxctool doctor`")
    return errors


def _lxd_keys(limits: Limits, raw_lxc: str, observed: Observed) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    config, dev_keys = limitmap.limits_to_lxd(limits)
    split_egress(config, dev_keys, raw_lxc, bool(observed.caps.tc_police), observed.hook_path)
    return config, dev_keys


def attachment_errors(attachments: list[Attachment], observed: Observed) -> list[str]:
    """Unknown networks, and fixed addresses outside their subnet or already in use."""
    errors: list[str] = []
    for att in attachments:
        net = observed.networks.get(att.network)
        if net is None:
            errors.append(f"--network: no network {att.network!r}; see `lxctool network list`")
        elif att.ip:
            label = "--ip" if len(attachments) == 1 else f"--ip {att.network}"
            errors += check_address(net, att.ip, observed.used_addresses.get(att.network, {}), label)
    return errors


def _image_errors(spec: LaunchSpec, observed: Observed) -> list[str]:
    if spec.image in observed.images or (spec.build and spec.image in observed.recipes):
        return []
    if spec.image in observed.recipes:
        return [f"--image: recipe {spec.image!r} is not built yet; build it with "
                f"`lxctool image build {spec.image}` or add --build to launch"]
    return [f"--image: no image or recipe {spec.image!r}; use a recipe from "
            f"{observed.recipe_dir}: {', '.join(observed.recipes)}"]


def desired_launch(spec: LaunchSpec, observed: Observed, *, allow_existing: bool = False) -> Desired:
    """The desired container of a launch, its file profiles and the image to build; SpecError if invalid."""
    errors: list[str] = check_name(spec.name)
    errors += check_limits_for_host(spec.limits, observed.caps.cpus, option_label)
    if not errors and not allow_existing and spec.name in observed.instances:
        errors.append(f"NAME: {spec.name!r} is already taken by an existing container; "
                      "choose another name or `lxctool delete` it")
    base = observed.profiles.get(BASE_PROFILE)
    if base is None:
        raise PreflightError(f"--profile: the base profile {BASE_PROFILE!r} is missing; {SETUP_HINT}")
    errors += _image_errors(spec, observed)
    attachments = list(spec.attachments) or [Attachment(spec.network, spec.ip)]
    errors += attachment_errors(attachments, observed)

    expanded: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (base.get("devices") or {}).items()}
    profiles: list[DesiredProfile] = []
    profile_names = [BASE_PROFILE]
    effective = Limits()
    for pname in spec.profiles:
        pfile = observed.profile_files.get(pname)
        if pfile is not None:
            if pfile.errors:
                errors += pfile.errors
                continue
            config, dev_keys = _lxd_keys(pfile.limits, "", observed)  # net-out shaped on the host
            desc = f"lxctool profile from {pfile.filename}: {pfile.description}".strip()
            prof = file_profile(pfile.stem, config, with_device_limits(expanded, dev_keys), desc)
            profiles.append(prof)
            profile_names.append(prof.name)
            effective = effective.merged(pfile.limits)
            expanded.update({k: dict(v) for k, v in prof.devices.items()})
        elif pname in observed.profiles:
            profile_names.append(pname)
            expanded.update(observed.profiles[pname].get("devices") or {})
        else:
            errors.append(f"--profile: {pname!r} is neither a file in {observed.profile_dir} "
                          f"nor an LXD profile; use one of: {', '.join(observed.profile_choices)}")
    effective = effective.merged(spec.limits)
    errors += capability_errors(effective, expanded, observed)
    if errors:
        raise SpecError(errors)

    config, dev_keys = _lxd_keys(spec.limits, "", observed)
    nics = nic_devices(attachments, expanded.get(limitmap.NIC_DEVICE))
    if len(nics) == 1 and nics["eth0"] == expanded.get(limitmap.NIC_DEVICE):
        nics = {}  # eth0 exactly as the profile has it
    extra = {**nics, **dict(p.device() for p in spec.publish)}
    inst = DesiredInstance(
        name=spec.name, image=spec.image, profiles=tuple(profile_names),
        config={**config, MANAGED_KEY: "true", "security.privileged": "false", "security.nesting": "false"},
        devices={**extra, **with_device_limits({**expanded, **nics}, dev_keys)},
        running=True, wait_ipv4=spec.wait, ipv4=attachments[0].ip, timeout=spec.timeout)
    images = (spec.image,) if spec.build and spec.image in observed.recipes else ()
    return Desired(instances=(inst,), profiles=tuple(profiles), images=images)


def desired_instance(spec: LaunchSpec, observed: Observed) -> DesiredInstance:
    """The container a launch spec asks for, given the observed host facts; SpecError if invalid."""
    return desired_launch(spec, observed).instances[0]


def as_desired(o: ObservedInstance, *, running: bool | None = None) -> DesiredInstance:
    """An existing container as the desired state (the start for a change to part of it)."""
    config = {k: v for k, v in o.config.items() if k != HASH_KEY and not k.startswith(IGNORED_PREFIXES)}
    return DesiredInstance(o.name, "", config, {k: dict(v) for k, v in o.devices.items()}, o.profiles,
                           running=o.running if running is None else running)


def desired_limits(o: ObservedInstance, new: Limits, observed: Observed) -> DesiredInstance:
    """The container with new limits set (everything else as it is); SpecError if the host cannot."""
    errors = check_limits_for_host(new, observed.caps.cpus, option_label)
    errors += capability_errors(new, o.expanded_devices, observed)
    if errors:
        raise SpecError(errors)
    config, dev_keys = _lxd_keys(new, o.config.get("raw.lxc", ""), observed)
    if new.cpu is not None and new.cpu.quota is not None and o.config.get("limits.cpu"):
        config["limits.cpu"] = ""  # a fractional --cpu replaces a CPU count or set
    d = as_desired(o)
    devices = {**d.devices, **with_device_limits(o.expanded_devices, dev_keys)}
    merged = {k: v for k, v in {**d.config, **config}.items() if v != ""}
    return DesiredInstance(d.name, d.image, merged, devices, d.profiles, running=d.running)
