"""Desired spec + observed state -> a list of operations (plain data). No I/O here.

`launch --dry-run` prints these ops; stacks (`up`/`plan`/`down`, a later issue) will produce
the same kind of list for many services and apply it with the same executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Op:
    """One change to make on the LXD host."""

    action: str                      # ensure-profile | create | start | wait-ipv4 | patch | stop | delete
    target: str                      # the instance / profile it acts on
    detail: dict[str, Any] = field(default_factory=dict)
    live: bool = True                # False when the change needs the instance recreated or restarted

    def describe(self) -> str:
        """One human line."""
        keys = ", ".join(f"{k}={v}" for k, v in sorted(self.detail.items()) if not isinstance(v, dict))
        return f"{self.action} {self.target}" + (f" ({keys})" if keys else "")


def plan_launch(name: str, body: dict[str, Any], file_profiles: dict[str, dict[str, Any]],
                wait: bool, timeout: float) -> list[Op]:
    """Ops that create, start and wait for one container (profiles from files first)."""
    ops = [Op("ensure-profile", pname, {"profile": prof}) for pname, prof in file_profiles.items()]
    config = {k: v for k, v in body["config"].items() if k.startswith("limits.")}
    ops.append(Op("create", name, {"image": body["source"]["alias"],
                                   "profiles": ",".join(body["profiles"]), **config, "body": body}))
    ops.append(Op("start", name))
    if wait:
        ops.append(Op("wait-ipv4", name, {"timeout": timeout}))
    return ops


def plan_limits(name: str, current_config: dict[str, str], new_config: dict[str, str],
                current_devices: dict[str, dict[str, Any]], new_devices: dict[str, dict[str, Any]]) -> list[Op]:
    """Ops that change a container's limits in place; empty when nothing differs."""
    config = {k: v for k, v in new_config.items() if current_config.get(k) != v}
    devices = {d: dev for d, dev in new_devices.items() if current_devices.get(d) != dev}
    if not config and not devices:
        return []
    detail: dict[str, Any] = dict(config)
    for dname, dev in devices.items():
        for k, v in dev.items():
            if current_devices.get(dname, {}).get(k) != v:
                detail[f"{dname}.{k}"] = v
    return [Op("patch", name, {**detail, "body": {"config": config, "devices": devices}})]
