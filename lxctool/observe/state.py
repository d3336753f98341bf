"""observe(): read, before planning, exactly the host facts a spec names. Reads only, never writes.

The planner (core/plan.py) is pure; everything it needs to know about LXD and the host comes
from here as one frozen Observed value: the named instances, profiles, networks and image
aliases, storage pool drivers (only when a disk size is asked), whether isolated bridges still
have their firewall rule, whether the net-out hook file is installed and current, and the host
capabilities that the asked limits depend on (each kernel probe only when a limit needs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxctool import paths
from lxctool.core.names import BASE_PROFILE
from lxctool.core.model import file_profile_prefix
from lxctool.core.errors import SpecError
from lxctool.core.nics import Attachment
from lxctool.core.plan import HostFacts, Observed, ObservedInstance, ProfileFile
from lxctool.core.spec import LaunchSpec, Limits
from lxctool.host.files import load_profile_file, profile_description
from lxctool.host import firewall
from lxctool.lxd.client import Lxd
from lxctool.lxd.remote import warn_host_only
from lxctool.lxd.views import Instance
from lxctool.net.network import is_isolated, is_lxctool, used_addresses

BATCH_FROM = 3  # from this many named objects of a kind, one list request beats one GET each


@dataclass(frozen=True)
class Want:
    """The objects and facts to observe (names as the spec gives them)."""

    instances: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()        # LXD profiles, or limit profile files of that name
    networks: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    recipes: tuple[str, ...] = ()         # recipe names whose existence matters
    build: bool = False                   # recipes will be built (so their existence matters)
    addresses_on: tuple[str, ...] = ()    # networks whose used addresses matter (fixed --ip)
    limits: Limits = field(default_factory=Limits)   # decides which host probes run
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # expanded devices (for the pool)


def want_launch(spec: LaunchSpec) -> Want:
    """What a launch needs to know."""
    atts = list(spec.attachments) or [Attachment(spec.network, spec.ip)]
    return Want(instances=(spec.name,), profiles=(BASE_PROFILE, *spec.profiles),
                networks=tuple(a.network for a in atts), images=(spec.image,),
                recipes=(spec.image,), build=spec.build, addresses_on=tuple(a.network for a in atts if a.ip),
                limits=spec.limits)


def _read_profile_file(name: str) -> ProfileFile | None:
    path = paths.find_file("profiles", name)
    if path is None:
        return None
    try:
        return ProfileFile(path.stem, path.name, load_profile_file(path), profile_description(path))
    except SpecError as exc:
        return ProfileFile(path.stem, path.name, errors=tuple(exc.errors))


def _by_name(names: list[str], one: Any, every: Any) -> dict[str, Any]:
    """Records of the named objects: one GET each, or one list request for many."""
    if len(names) >= BATCH_FROM:
        allrecs = {r["name"]: r for r in every()}
        return {n: allrecs[n] for n in names if n in allrecs}
    out = {}
    for n in names:
        rec = one(n)
        if rec is not None:
            out[n] = rec
    return out


def _host_facts(caps: Any, limits: Limits) -> HostFacts:
    if caps is None:
        return HostFacts()
    police = caps.tc_police if limits.net_out is not None else None  # a 60 ms kernel probe
    return HostFacts(cpus=caps.cpus, tc_police=police,
                     ifb=caps.ifb if limits.net_out is not None and not police else None,
                     swap_accounting=caps.swap_accounting if limits.swap else None)


def observe(lxd: Any, caps: Any, want: Want) -> Observed:
    """Read what `want` names from LXD and the host (no writes: a dry run stays a dry run)."""
    instances = {n: ObservedInstance.from_view(Instance(r))
                 for n, r in _by_name(list(dict.fromkeys(want.instances)), lxd.instance,
                                      lxd.instances_full).items()}
    files: dict[str, ProfileFile] = {}
    lxd_names: list[str] = []
    for name in dict.fromkeys(want.profiles):
        pfile = None if name == BASE_PROFILE else _read_profile_file(name)
        if pfile is not None:
            files[name] = pfile
        else:
            lxd_names.append(name)
    if files:  # a file's LXD profile is named by its content (lxctool-STEM-HASH): read every candidate
        prefixes = tuple(file_profile_prefix(f.stem) for f in files.values())
        every = lxd.profiles()
        profiles = {p["name"]: p for p in every if p["name"] in lxd_names or p["name"].startswith(prefixes)}
    else:
        profiles = _by_name(lxd_names, lxd.profile, lxd.profiles)
    choices: tuple[str, ...] = ()
    if any(n not in profiles for n in lxd_names if n != BASE_PROFILE):
        on_disk = sorted(p.stem for p in paths.data_dir("profiles").glob("*.yaml"))
        choices = tuple(on_disk + sorted(p["name"] for p in lxd.profiles() if p["name"] not in on_disk))
    networks = _by_name(list(dict.fromkeys(want.networks)), lxd.network, lxd.networks)
    images = {}
    for alias in dict.fromkeys(want.images):
        rec = lxd.image_alias(alias)
        if rec is not None:
            images[alias] = str(rec.get("target", ""))
    limits = want.limits
    for pfile in files.values():
        if pfile.limits is not None:
            limits = pfile.limits.merged(limits)
    recipes: tuple[str, ...] = ()
    recipe_dir = ""
    missing = [r for r in want.recipes if r not in images]
    if missing or want.build:
        from lxctool.images.recipes import find_recipe, recipe_names  # lazy: ~9 ms; only a missing image needs it

        recipe_dir = str(paths.data_dir("images"))
        found = tuple(r for r in want.recipes if find_recipe(r) is not None)
        listing = recipe_names() if any(r not in found for r in missing) else []  # for the error message
        recipes = tuple(dict.fromkeys((*listing, *found)))
    used: dict[str, dict[str, str]] = {}
    if want.addresses_on:
        everything = lxd.instances_full()
        used = {n: used_addresses(lxd, n, everything) for n in want.addresses_on if n in networks}
    pools = {}
    if limits.disk is not None:
        pools = {p["name"]: str(p.get("driver", "unknown")) for p in lxd.storage_pools()}
    facts = _host_facts(caps, limits)
    hook_path, hook_ok = _hook_state(facts)
    return Observed(instances=instances, networks=networks, profiles=profiles, images=images,
                    pool_drivers=pools, isolation_missing=isolation_missing(lxd, networks),
                    hook_installed=hook_ok, hook_path=hook_path, caps=facts, used_addresses=used,
                    profile_files=files, recipes=recipes, recipe_dir=recipe_dir,
                    profile_dir=str(paths.data_dir("profiles")), profile_choices=choices)


def _hook_state(facts: HostFacts) -> tuple[str, bool]:
    """(hook path, whether it is installed and current); checked only when egress is shaped here."""
    if facts.tc_police is None or facts.tc_police:
        return Observed.hook_path, True  # no host-side egress asked: the hook does not matter
    from lxctool.host import shaping  # lazy: ~8 ms (tc, desired); only host-side egress needs it

    return str(shaping.HOOK_PATH), shaping.hook_current()


def isolation_missing(lxd: Lxd, networks: dict[str, Any]) -> frozenset[str]:
    """Isolated lxctool bridges among these whose drop rule is gone (LXD rewrites rules at start)."""
    if not lxd.is_local:  # a remote's bridges are in that machine's iptables, not ours
        if networks:
            warn_host_only(lxd, "the isolation rule of " + ", ".join(sorted(networks)) + " (iptables)")
        return frozenset()

    return frozenset(name for name, net in networks.items()
                     if is_lxctool(net) and is_isolated(net) and not firewall.isolation_rule_present(name))
