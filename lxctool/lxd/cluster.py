"""LXD clusters through the one door: members, their state, and where instances run."""

from __future__ import annotations

from typing import Any

from lxctool.core.errors import LxdError, NotFound


def is_clustered(lxd: Any) -> bool:
    """Whether the daemon is a cluster member."""
    return bool((lxd.server().get("environment") or {}).get("server_clustered"))


def members(lxd: Any) -> list[dict[str, Any]]:
    """Cluster members as {name, status, roles, address, message, clustered}; a lone server is one.

    `status` is LXD's own word (Online, Offline, Evacuated...).
    """
    env = lxd.server().get("environment") or {}
    if not env.get("server_clustered"):
        return [{"name": env.get("server_name", "local"), "status": "Online", "roles": [],
                 "address": ",".join(env.get("addresses") or []), "message": "", "clustered": False}]
    out = []
    for m in lxd.get("/1.0/cluster/members", recursion=1) or []:
        out.append({"name": m.get("server_name"), "status": m.get("status", ""),
                    "roles": list(m.get("roles") or []), "address": m.get("url", ""),
                    "message": m.get("message", ""), "clustered": True})
    return sorted(out, key=lambda m: m["name"])


def check_target(lxd: Any, target: str) -> None:
    """Refuse --target before any change: not a cluster, unknown member, or member offline."""
    known = members(lxd)
    if not known[0]["clustered"]:
        raise NotFound(f"--target: {lxd.where} is not a cluster; drop --target")
    byname = {m["name"]: m for m in known}
    if target not in byname:
        raise NotFound(f"--target: no cluster member named {target!r}; members: {', '.join(sorted(byname))}")
    if byname[target]["status"] != "Online":
        raise LxdError(f"--target: member {target} is {byname[target]['status']} "
                       f"({byname[target]['message'] or 'no message'}); it cannot take a container now")
