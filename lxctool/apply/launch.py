"""Launch: observe what the spec names, plan the ops (pure), then apply them with the executor."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lxctool.apply.executor import apply
from lxctool.apply.lifecycle import row
from lxctool.apply import waits
from lxctool.core.desired import desired_launch
from lxctool.core.plan import Desired, Observed, Op, OpKind, plan
from lxctool.core.spec import LaunchSpec
from lxctool.host.caps import HostCapabilities
from lxctool.lxd.client import Lxd
from lxctool.observe.state import observe, want_launch

# moved to waits.py; still found here by their older callers
READINESS_CONFIG_KEY = waits.READINESS_CONFIG_KEY
cpuset_matches = waits.cpuset_matches


@dataclass
class LaunchPlan:
    """A validated launch: what was observed, what is desired, and the ops that get there."""

    spec: LaunchSpec
    observed: Observed
    desired: Desired
    ops: list[Op] = field(default_factory=list)


def prepare_launch(lxd: Lxd, spec: LaunchSpec, caps: HostCapabilities,
                   attachments: list[Any] | None = None, publish: list[Any] | None = None) -> LaunchPlan:
    """Observe the host and validate everything (SpecError lists every problem); plan the ops.

    attachments (core.nics.Attachment, default: spec.network/spec.ip) put eth0, eth1... on networks;
    publish (core.nics.Publish) adds proxy devices. Nothing is written: a dry run stops here.
    Hold network.address_lock() around prepare+apply when an address is fixed.
    """
    if attachments or publish:
        spec = replace(spec, attachments=tuple(attachments or spec.attachments),
                       publish=tuple(publish or spec.publish))
    observed = observe(lxd, caps, want_launch(spec))
    desired = desired_launch(spec, observed)
    return LaunchPlan(spec, observed, desired, plan(desired, observed))


def apply_launch(lxd: Lxd, launch: LaunchPlan) -> dict[str, Any]:
    """Apply a launch plan (a half-created container is removed on failure); return its row."""
    name = launch.spec.name
    inst: dict[str, Any] = {}
    state: dict[str, Any] | None = None
    for op, result in apply(lxd, launch.ops):
        if op.target != name:
            continue
        if op.kind == OpKind.START:
            inst = result
        elif op.kind == OpKind.WAIT_IPV4:
            inst, state = result["instance"] or inst, result["state"]
    return row(inst or lxd.instance(name) or {}, state or lxd.instance_state(name))
