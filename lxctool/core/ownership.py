"""Ownership, one rule for every command: lxctool changes only what it created, unless --force.

An op that changes or removes an existing container, network or profile that lxctool did not
create is refused before any change (PreflightError, exit 2, one line per object). The planner
(core/plan.py) applies the rule to every plan it makes, so `launch`, `limits`, `start`, `stop`,
`restart`, `delete`, `network delete` and stacks' `up`/`down` all follow it. Reads (`info`,
`list --all`, `limits NAME` without options) and `exec` (the user's own command, run as
`lxc exec` would, with no change lxctool makes) are not ops and need no --force (README).
Pure: it looks only at the ops and the observed records.
"""

from __future__ import annotations

from typing import Any, Mapping

from lxctool.core.errors import NeedsForce
from lxctool.core.model import MISSING, Observed, Op, OpKind, kind_name
from lxctool.core.names import BASE_PROFILE, MANAGED_KEY

# op kinds that change or remove an existing container
ON_INSTANCE = {OpKind.UPDATE_LIVE, OpKind.RECREATE, OpKind.START, OpKind.STOP, OpKind.RESTART,
               OpKind.DELETE, OpKind.DETACH_NIC}
PROFILE_DESCRIPTION = "lxctool profile from "  # how lxctool describes the profiles it makes from files


def network_is_lxctool(rec: Mapping[str, Any]) -> bool:
    """Whether lxctool created this network (lxctool0 carries the same marker from setup-host.sh)."""
    return (rec.get("config") or {}).get(MANAGED_KEY) == "true"


def profile_is_lxctool(name: str, rec: Mapping[str, Any]) -> bool:
    """Whether lxctool made this profile: the base profile, or one made from a limit profile file."""
    return name == BASE_PROFILE or str(rec.get("description") or "").startswith(PROFILE_DESCRIPTION)


def foreign_objects(ops: list[Op], observed: Observed) -> list[str]:
    """Each existing object an op would change although lxctool did not create it, as `kind 'name'`."""
    out: list[str] = []
    for op in ops:
        kind = kind_name(op.kind)
        what = None
        if kind in {k.value for k in ON_INSTANCE}:
            inst = observed.instances.get(op.target)
            if inst is not None and not inst.managed:
                what = f"container {op.target!r}"
        elif kind == OpKind.DELETE_NETWORK.value or (kind == OpKind.ENSURE_NETWORK.value and op.reason != MISSING):
            net = observed.networks.get(op.target)
            if net is not None and not network_is_lxctool(net):
                what = f"network {op.target!r}"
        elif kind == OpKind.DELETE_PROFILE.value or (kind == OpKind.ENSURE_PROFILE.value and op.reason != MISSING):
            prof = observed.profiles.get(op.target)
            if prof is not None and not profile_is_lxctool(op.target, prof):
                what = f"profile {op.target!r}"
        if what and what not in out:
            out.append(what)
    return out


def foreign_lines(ops: list[Op], observed: Observed) -> list[str]:
    """One refusal line per object lxctool did not create that an op would change."""
    return [f"NAME: {what} was not created by lxctool; nothing changed; add --force to act on it anyway"
            for what in foreign_objects(ops, observed)]


def refuse_foreign(ops: list[Op], observed: Observed, force: bool = False) -> list[Op]:
    """The ops unchanged; NeedsForce (exit 2) naming each object lxctool did not create, unless force."""
    lines = [] if force else foreign_lines(ops, observed)
    if lines:
        raise NeedsForce(lines)
    return ops
