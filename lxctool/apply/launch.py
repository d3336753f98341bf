"""Launch: validate everything and observe the host (prepare), then apply the plan's ops."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxctool.core import limits as limitmap
from lxctool import paths
from lxctool.core import units
from lxctool.host.cgroups import CgroupReader
from lxctool.core.errors import LxdError, PreflightError, SpecError, Timeout
from lxctool.host.caps import HostCapabilities
from lxctool.apply.lifecycle import capability_errors, row, with_device_limits
from lxctool.core.names import BASE_PROFILE, FILE_PROFILE_PREFIX, MANAGED_KEY, SETUP_HINT
from lxctool.report.progress import progress
from lxctool.lxd.client import Lxd, ipv4_addresses, wait_until
from lxctool.core.plan import Op, plan_launch
from lxctool.core.spec import LaunchSpec, Limits, check_limits_for_host, check_name, load_profile_file, option_label


@dataclass
class LaunchPlan:
    """A validated launch: the ops to apply and what they need."""

    spec: LaunchSpec
    body: dict[str, Any]
    ops: list[Op] = field(default_factory=list)


def _file_profile(lxd: Lxd, path: Path, base_devices: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any], Limits]:
    """Turn a profile file into (LXD profile name, profile body, its limits)."""
    limits = load_profile_file(path)
    config, dev_keys = limitmap.limits_to_lxd(limits)
    from lxctool.host import shaping as netshape
    from lxctool.host.caps import tc_police_available
    from lxctool.core.spec import profile_description

    netshape.split_egress(config, dev_keys, "", tc_police_available)  # net-out shaped on the host

    body = {"config": config, "devices": with_device_limits(base_devices, dev_keys),
            "description": f"lxctool profile from {path.name}: {profile_description(path)}".strip()}
    return FILE_PROFILE_PREFIX + path.stem, body, limits


def prepare_launch(lxd: Lxd, spec: LaunchSpec, caps: HostCapabilities,
                   attachments: list[Any] | None = None, publish: list[Any] | None = None) -> LaunchPlan:
    """Observe the host and validate everything; raise SpecError listing every problem.

    attachments (netplan.Attachment, default: spec.network/spec.ip) put eth0, eth1... on networks;
    publish (netplan.Publish) adds proxy devices. Hold network.address_lock() around prepare+apply.
    """
    from lxctool.net import attach as netplan
    errors: list[str] = check_name(spec.name)
    errors += check_limits_for_host(spec.limits, caps.cpus, option_label)
    if not errors and lxd.instance(spec.name) is not None:
        errors.append(f"NAME: {spec.name!r} is already taken by an existing container; "
                      "choose another name or `lxctool delete` it")
    base = lxd.profile(BASE_PROFILE)
    if base is None:
        raise PreflightError(f"--profile: the base profile {BASE_PROFILE!r} is missing; {SETUP_HINT}")
    build_ops: list[Op] = []
    if spec.build:
        from lxctool.images.recipes import find_recipe

        if find_recipe(spec.image) is not None:  # an image without a recipe is launched as it is
            build_ops.append(Op("build-image", spec.image))
    if not build_ops and lxd.image_alias(spec.image) is None:
        from lxctool.images.recipes import find_recipe, recipe_names

        if find_recipe(spec.image) is not None:
            errors.append(f"--image: recipe {spec.image!r} is not built yet; build it with "
                          f"`lxctool image build {spec.image}` or add --build to launch")
        else:
            errors.append(f"--image: no image or recipe {spec.image!r}; use a recipe from "
                          f"{paths.data_dir('images')}: {', '.join(recipe_names())}")
    attachments = attachments or [netplan.Attachment(spec.network, spec.ip)]
    networks: dict[str, dict[str, Any]] = {}
    errors += netplan.attachment_errors(lxd, attachments, networks)

    expanded_devices: dict[str, dict[str, Any]] = dict(base.get("devices") or {})
    file_profiles: dict[str, dict[str, Any]] = {}
    profile_names = [BASE_PROFILE]
    effective = Limits()
    for pname in spec.profiles:
        path = paths.find_file("profiles", pname)
        if path is not None:
            try:
                lxd_name, body, plimits = _file_profile(lxd, path, expanded_devices)
            except SpecError as exc:
                errors += exc.errors
                continue
            file_profiles[lxd_name] = body
            profile_names.append(lxd_name)
            effective = effective.merged(plimits)
            expanded_devices.update(body["devices"])
        else:
            prof = lxd.profile(pname)
            if prof is None:
                errors.append(f"--profile: {pname!r} is neither a file in {paths.data_dir('profiles')} "
                              f"nor an LXD profile; use one of: {', '.join(_profile_choices(lxd))}")
                continue
            profile_names.append(pname)
            expanded_devices.update(prof.get("devices") or {})
    effective = effective.merged(spec.limits)
    errors += capability_errors(lxd, effective, expanded_devices, caps)
    if errors:
        raise SpecError(errors)

    config, dev_keys = limitmap.limits_to_lxd(spec.limits)
    from lxctool.host import shaping as netshape

    netshape.split_egress(config, dev_keys, "", lambda: caps.tc_police)
    nics = netplan.nic_devices(attachments, expanded_devices.get(limitmap.NIC_DEVICE))
    if len(nics) == 1 and nics["eth0"] == expanded_devices.get(limitmap.NIC_DEVICE):
        nics = {}  # eth0 exactly as the profile has it
    extra = {**nics, **dict(p.device() for p in publish or [])}
    body = {
        "name": spec.name,
        "type": "container",
        "source": {"type": "image", "alias": spec.image},
        "profiles": profile_names,
        "config": {**config, MANAGED_KEY: "true",
                   "security.privileged": "false", "security.nesting": "false"},
        "devices": {**extra, **with_device_limits({**expanded_devices, **nics}, dev_keys)},
    }
    plan = LaunchPlan(spec, body)
    plan.ops = build_ops + [Op("ensure-isolation", n) for n in _isolation_missing(lxd, networks)]
    plan.ops += plan_launch(spec.name, body, file_profiles, spec.wait, spec.timeout)
    return plan


def _isolation_missing(lxd: Lxd, networks: dict[str, dict[str, Any]]) -> list[str]:
    """Attached isolated lxctool bridges whose drop rule is gone (LXD rewrites rules when it starts)."""
    from lxctool.host import firewall
    from lxctool.net.network import is_isolated, is_lxctool

    if not lxd.is_local:
        from lxctool.lxd.remote import warn_host_only

        warn_host_only(lxd, "the isolation rule of " + ", ".join(sorted(networks)) + " (iptables)")
        return []
    return [name for name, net in networks.items()
            if is_lxctool(net) and is_isolated(net) and not firewall.isolation_rule_present(name)]


def _profile_choices(lxd: Lxd) -> list[str]:
    files = sorted(p.stem for p in paths.data_dir("profiles").glob("*.yaml"))
    return files + sorted(p["name"] for p in lxd.profiles() if p["name"] not in files)


def apply_launch(lxd: Lxd, plan: LaunchPlan) -> dict[str, Any]:
    """Apply a launch plan; on failure before the container runs, remove what was created."""
    created = False
    started: dict[str, Any] = {}
    state: dict[str, Any] | None = None
    name = plan.spec.name
    try:
        for op in plan.ops:
            if op.action == "build-image":
                from lxctool.images.build import build

                build(lxd, op.target)
            elif op.action == "ensure-isolation":
                from lxctool.host import firewall

                if firewall.ensure_isolation(op.target):
                    progress(f"put back the missing isolation rule of {op.target}")
            elif op.action == "ensure-profile":
                prof = op.detail["profile"]
                lxd.put_profile(op.target, prof["config"], prof["devices"], prof["description"])
            elif op.action == "create":
                progress(f"creating {name} from {plan.spec.image}")
                lxd.create_instance(op.detail["body"])
                created = True
            elif op.action == "start":
                lxd.set_state(name, "start")
                created = False  # running now: a timeout below leaves it, and says so
                started = lxd.instance(name) or {}
                wait_for_cpuset(lxd, name, (started.get("expanded_config") or {}).get("limits.cpu"))
            elif op.action == "wait-ipv4":
                state = wait_for_ipv4(lxd, name, plan.spec.ip, plan.spec.timeout)
                from lxctool.net.attach import configure_extra_nics

                if configure_extra_nics(lxd, name, plan.body["devices"]):
                    state = None  # more addresses now: read the state again
    except BaseException as exc:
        if created:
            _remove_half_created(lxd, name, exc)
        raise
    if plan.spec.wait and (started.get("config") or {}).get(READINESS_CONFIG_KEY):
        wait_for_readiness(lxd, name, max(plan.spec.timeout, READY_TIMEOUT))
        state = None
    return row(started or lxd.instance(name) or {}, state or lxd.instance_state(name))


READY_TIMEOUT = 180.0
# LXD copies image properties into the instance as image.*; images.READINESS_PROPERTY names it
# (repeated here so that a launch without a check does not import the image builder)
READINESS_CONFIG_KEY = "image.lxctool.readiness"


def wait_for_readiness(lxd: Lxd, name: str, timeout: float) -> None:
    """Run the image's readiness check (if it has one) until it passes; Timeout naming it if not."""
    from lxctool.images.ops import wait_ready

    result = wait_ready(lxd, name, timeout)
    if not result["ready"]:
        raise Timeout(f"{name} is running but its {result['image']} readiness check still fails after "
                      f"{timeout:g}s ({result['output']}); it was left running: check it with "
                      f"`lxctool image check {name}`, remove it with `lxctool delete --force {name}`")


def _remove_half_created(lxd: Lxd, name: str, exc: BaseException) -> None:
    try:
        lxd.delete_instance(name)
        progress(f"{name} could not start ({exc}); removed the container it had created")
    except LxdError as cleanup_exc:
        progress(f"{name} could not start and could not be removed ({cleanup_exc}); "
                 f"`lxctool delete --force {name}` removes it")


def cpuset_matches(actual: str | None, wanted: str) -> bool:
    """Whether a cgroup cpuset satisfies limits.cpu (a count, or an exact set)."""
    if not actual:
        return False
    have, spec = units.parse_cpuset(actual), units.parse_cpu(wanted)
    return len(have) == spec.count if spec.count is not None else have == spec.cpuset


def wait_for_cpuset(lxd: Lxd, name: str, wanted: str | None, timeout: float = 10) -> None:
    """LXD pins CPUs shortly after start (its scheduler runs asynchronously): wait until it has."""
    if not wanted or not lxd.is_local:  # a remote's cgroup files are not readable from here
        return
    reader = CgroupReader()
    if not reader.exists(name, lxd.project):
        return  # not a local daemon: nothing to read
    if not wait_until(lambda: cpuset_matches(reader.read(name, lxd.project).cpuset, wanted), timeout):
        progress(f"{name}: LXD has not applied limits.cpu={wanted} to the cpuset after {timeout:g}s")


def wait_for_ipv4(lxd: Lxd, name: str, expected: str | None, timeout: float) -> dict[str, Any]:
    """Poll the instance state until it has a (the expected) IPv4; return that state, or Timeout."""
    def ready() -> dict[str, Any] | None:
        state = lxd.instance_state(name)
        addrs = ipv4_addresses(state)
        return state if addrs and (expected is None or expected in addrs) else None

    state = wait_until(ready, timeout, interval=0.01)
    if not state:
        what = f"IPv4 {expected}" if expected else "an IPv4 address on its bridge"
        raise Timeout(f"{name} is running but got no {what} within {timeout:g}s; it was left running: "
                      f"inspect it with `lxctool exec {name} -- ip addr` and remove it with "
                      f"`lxctool delete --force {name}`")
    return state
