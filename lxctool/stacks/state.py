"""Read the host once for a stack: a handful of batched GETs give the planner's Observed, the
host checks' view and what desired state needs (HostBase). No write request here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxctool import paths
from lxctool.core.errors import PreflightError, SpecError
from lxctool.core.names import BASE_PROFILE, SETUP_HINT
from lxctool.core.plan import HostFacts, Observed, ObservedInstance
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.lxd.cluster import members
from lxctool.lxd.views import Instance
from lxctool.stacks import model as m
from lxctool.stacks.desired import FileProfile, HostBase
from lxctool.stacks.host_check import HostView, check_host
from lxctool.observe.state import isolation_missing
from lxctool.images.recipes import find_recipe
from lxctool.host.files import load_profile_file, profile_description
from lxctool.host import shaping
from lxctool.core.spec import check_limits_for_host
from lxctool.images.recipes import recipe_names


@dataclass
class StackState:
    """One observation of the host, as each consumer needs it."""

    observed: Observed
    view: HostView
    base: HostBase
    records: dict[str, dict[str, Any]]      # the stack's instance records, with state


def own_instances(instances: list[dict[str, Any]], stack: str) -> dict[str, dict[str, Any]]:
    """The instances labelled as this stack's."""
    return {i["name"]: i for i in instances if (i.get("config") or {}).get(m.STACK_KEY) == stack}


def addresses(records: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """instance -> its IPv4 addresses now."""
    return {name: ipv4_addresses(rec.get("state")) for name, rec in records.items()}


def observe(lxd: Lxd, stack: m.Stack, caps: Any = None) -> StackState:
    """Read instances, networks, profiles, images (and volumes when the stack has some) once."""
    instances = lxd.instances_full()
    networks = {n["name"]: n for n in lxd.networks()}
    profiles = {p["name"]: p for p in lxd.profiles()}
    images: dict[str, str] = {}
    for img in lxd.images():
        for alias in img.get("aliases") or []:
            images[alias["name"]] = img["fingerprint"]
    base = profiles.get(BASE_PROFILE)
    if base is None:
        raise PreflightError(f"the base profile {BASE_PROFILE!r} is missing; {SETUP_HINT}")
    base_devices = base.get("devices") or {}
    pool = (base_devices.get("root") or {}).get("pool", "default")
    volumes: dict[tuple[str, str], dict[str, Any]] = {}
    for vpool in sorted({v.pool or pool for v in stack.volumes}):
        for vol in lxd.storage_volumes(vpool):
            if vol.get("type") == "custom":
                volumes[(vpool, vol["name"])] = vol
    records = own_instances(instances, stack.name)
    wanted = {n for s in stack.services for n in m.instance_names(stack.name, s)}
    observed_instances = {name: ObservedInstance.from_view(Instance(rec)) for name, rec in records.items()}

    attached = {m.network_name(stack.name, n.name) for n in stack.networks}
    attached |= {a.network for s in stack.services for a in s.networks if stack.network(a.network) is None}
    attached.add(str((base_devices.get("eth0") or {}).get("network", "")))
    nets = {k: v for k, v in networks.items() if k in attached}
    facts, hook_path, hook_ok = _host_facts(stack, caps)
    observed = Observed(instances=observed_instances, networks=nets, profiles=profiles, volumes=volumes,
                        images=images, isolation_missing=isolation_missing(lxd, nets), caps=facts,
                        hook_installed=hook_ok, hook_path=hook_path)
    # cluster members cost two GETs: read only when a service asks for a placement
    cluster = members(lxd) if any(sv.member or sv.spread for sv in stack.services) else None
    view = HostView(set(images), set(profiles), networks, instances, cluster, lxd.where)
    online = tuple(mb["name"] for mb in cluster or () if mb["clustered"] and mb["status"] == "Online")
    files = {}
    for p in {p for s in stack.services for p in s.profiles}:
        path = paths.find_file("profiles", p)
        if path is not None:
            files[p] = FileProfile(path.stem, load_profile_file(path), profile_description(path))

    build = tuple(sorted({s.image for s in stack.services if s.image not in images and find_recipe(s.image)}))
    tc_police = bool(facts.tc_police)
    host = HostBase(base_devices, files, profiles, pool, tc_police, build, online)
    foreign = sorted(i["name"] for i in instances if i["name"] in wanted and i["name"] not in records)
    if foreign:
        raise SpecError([f"services: container {n!r} exists and is not part of stack {stack.name}; "
                         "rename the stack or remove that container" for n in foreign])
    return StackState(observed, view, host, records)


def _host_facts(stack: m.Stack, caps: Any) -> tuple[HostFacts, str, bool]:
    """What the host can enforce, probed only for limits the stack asks (as launch does)."""
    net_out = any(s.limits.net_out is not None for s in stack.services)
    police = bool(caps.tc_police) if caps is not None and net_out else None  # a 60 ms kernel probe
    facts = HostFacts(cpus=getattr(caps, "cpus", 1), tc_police=police,
                      ifb=bool(caps.ifb) if police is False else None)
    hook_ok = True if police is None or police else shaping.hook_current()
    return facts, str(shaping.HOOK_PATH), hook_ok


def own_ports(records: dict[str, dict[str, Any]]) -> set[tuple[str, int, str]]:
    """Host ports the stack's own proxy devices hold (they are not 'already bound' for up)."""
    out = set()
    for rec in records.values():
        for dev in (rec.get("devices") or {}).values():
            if dev.get("type") == "proxy" and dev.get("listen", "").count(":") == 2:
                proto, ip, port = dev["listen"].split(":")
                out.add((ip, int(port), proto))
    return out


def host_errors(stack: m.Stack, st: StackState, cpus: int | None = None) -> list[str]:
    """check_host with this observation, and limits this host's CPUs cannot hold."""
    files = {p.stem for p in paths.data_dir("profiles").glob("*.yaml")}
    errors = check_host(stack, st.view, set(recipe_names()), files, own_ports(st.records))
    for svc in stack.services if cpus else ():
        prefix = f"services.{svc.name}.limits."
        errors += check_limits_for_host(svc.limits, int(cpus or 1), prefix.__add__)
    return errors
