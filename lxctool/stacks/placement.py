"""Stack placement on cluster members (`placement: {member: NAME}` or `{spread: true}`): which
member each replica goes to, and the checks against the members LXD reports. Pure."""

from __future__ import annotations

from typing import Any

from lxctool.stacks import model as m


def member_for(svc: m.Service, n: int, online: tuple[str, ...]) -> str | None:
    """The member replica n (from 1) goes to: the named one, or round-robin over the online members
    in name order (deterministic, so `plan` is stable while they stay online); None: LXD chooses."""
    if svc.member:
        return svc.member
    if svc.spread and online:
        return sorted(online)[(n - 1) % len(online)]
    return None


def check(stack: m.Stack, members: list[dict[str, Any]] | None, where: str) -> list[str]:
    """placement: needs a cluster, and a member that exists and is online (one line per problem)."""
    errors = []
    online = sorted(mb["name"] for mb in members or () if mb["status"] == "Online")
    status = {mb["name"]: mb["status"] for mb in members or ()}
    clustered = bool(members[0]["clustered"]) if members else False
    if clustered:
        errors += _not_on_a_cluster(stack)
    for svc in stack.services:
        label = f"services.{svc.name}.placement"
        if not (svc.member or svc.spread):
            continue
        if not clustered:
            errors.append(f"{label}: the LXD server ({where or 'this one'}) is not a cluster; drop placement: "
                          "(it places replicas on cluster members)")
        elif svc.member and svc.member not in status:
            errors.append(f"{label}.member: no cluster member {svc.member!r}; online members: "
                          f"{', '.join(online) or 'none'}")
        elif svc.member and status[svc.member] != "Online":
            errors.append(f"{label}.member: member {svc.member} is {status[svc.member]}; online members: "
                          f"{', '.join(online) or 'none'}")
        elif svc.spread and not online:
            errors.append(f"{label}.spread: no cluster member is online")
    return errors


def _not_on_a_cluster(stack: m.Stack) -> list[str]:
    """What stacks cannot yet make on a cluster: refused before any change rather than half made."""
    errors = [f"networks.{net.name}: a stack network is not created on a cluster yet (LXD makes it member "
              "by member); attach the services to a cluster-wide network such as lxctool0"
              for net in stack.networks]
    errors += [f"services.{svc.name}.volumes: a stack volume is not placed on a cluster member yet (LXD keeps "
               "a custom volume on one member); drop volumes: on a cluster" for svc in stack.services if svc.volumes]
    return errors
