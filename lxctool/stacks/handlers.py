"""The stack's handlers for the one executor (apply/executor.py): its own kinds (provision,
wait-healthy) and three planner kinds with one twist each, plus request counting by method.

The twist: a replica that has provisioning to do is created (or live-updated) with
user.lxctool.provision=pending, and only a successful provision writes the hash there. A run
stopped in between leaves "pending", so the next `up` provisions it.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import replace
from typing import Any, Callable

from lxctool.apply.handlers import HANDLERS
from lxctool.core.errors import LxctoolError
from lxctool.core.plan import DesiredInstance, Op, OpKind
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.report.progress import progress
from lxctool.stacks.desired import PROVISION_KEY
from lxctool.stacks.provision import provision
from lxctool.stacks.health import wait_healthy

STOP = threading.Event()  # set on SIGINT/SIGTERM: long waits (health checks) give up at once


class HealthFailed(LxctoolError):
    """A replica never became healthy: the services that depend on it were not started."""

    exit_code = 1


def counting(lxd: Lxd, counter: collections.Counter[str]) -> Lxd:
    """lxd with every request also counted by method in counter; its clones count there too."""
    raw = lxd.raw

    def counted(method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        counter[method] += 1
        return raw(method, path, **kw)

    lxd.raw = counted  # type: ignore[method-assign]
    # the executor gives each worker thread a clone(): count those requests in the same place
    lxd.clone = lambda: counting(  # type: ignore[method-assign]
        Lxd(project=lxd.project, timeout=lxd.timeout, transport=lxd.transport), counter)
    return lxd


def _pending(d: DesiredInstance) -> dict[str, Any]:
    body = d.body()
    if PROVISION_KEY in body["config"]:
        body["config"][PROVISION_KEY] = "pending"
    return body


def remove_instance(lxd: Lxd, name: str) -> None:
    """Stop (forced) and delete a container, and its host-side shaping device."""
    HANDLERS[OpKind.DELETE](_Bare(lxd), Op(OpKind.DELETE, name))


class _Bare:
    """The little of an executor context a handler needs when called outside the executor."""

    def __init__(self, lxd: Lxd) -> None:
        self.lxd = lxd
        self.results: dict[str, Any] = {}
        self.created: set[str] = set()

    def on_failure(self, target: str, undo: Any) -> None:
        """Nothing to undo outside a run."""

    def settled(self, target: str) -> None:
        """Nothing to settle outside a run."""


def _create(ctx: Any, op: Op) -> None:
    d: DesiredInstance = op.payload
    lxd = ctx.lxd
    if op.kind == OpKind.RECREATE:
        progress(f"recreating {d.name}: {op.reason}")
        remove_instance(lxd, d.name)
    else:
        progress(f"creating {d.name} from {d.image}" + (f" on {d.member}" if d.member else ""))
    # the client's target is per thread (the executor gives each worker its own clone)
    before, lxd.target = lxd.target, d.member or lxd.target
    try:
        lxd.create_instance(_pending(d))
    finally:
        lxd.target = before
    ctx.on_failure(d.name, lambda exc: remove_instance(lxd, d.name))  # never started: not kept


def _update_live(ctx: Any, op: Op) -> None:
    progress(op.describe())
    if PROVISION_KEY in op.payload["config"]:
        op = replace(op, payload={**op.payload, "config": {**op.payload["config"], PROVISION_KEY: "pending"}})
    HANDLERS[OpKind.UPDATE_LIVE](ctx, op)


def _logged(kind: OpKind) -> Callable[[Any, Op], Any]:
    def handler(ctx: Any, op: Op) -> Any:
        progress(op.describe())
        return HANDLERS[kind](ctx, op)
    return handler


def _provision(ctx: Any, op: Op) -> None:

    d, svc, tmpl_ctx, secrets = op.payload
    progress(f"provisioning {d.name}")
    provision(ctx.lxd, d.name, svc, tmpl_ctx, secrets, d.config[PROVISION_KEY])


def _wait_healthy(ctx: Any, op: Op) -> None:

    svc, secrets = op.payload
    lxd = ctx.lxd
    state = (ctx.results.get(op.target) or {}).get("state") if isinstance(ctx.results.get(op.target), dict) else None
    ip = next(iter(ipv4_addresses(state)), None) if state else None
    probe = wait_healthy(lxd, op.target, svc.healthcheck, ip, STOP.is_set)
    if not probe.healthy:
        raise HealthFailed(f"services.{svc.name}: {op.target} is not healthy after {svc.healthcheck.retries} "
                           f"probes ({svc.healthcheck.describe()}); last probe: {secrets.mask(probe.output)}; "
                           "services that depend on it were not started")
    progress(f"{op.target} is healthy")


STACK_HANDLERS: dict[OpKind | str, Callable[[Any, Op], Any]] = {
    OpKind.CREATE: _create, OpKind.RECREATE: _create, OpKind.UPDATE_LIVE: _update_live,
    **{k: _logged(k) for k in (OpKind.ENSURE_NETWORK, OpKind.ENSURE_VOLUME, OpKind.ENSURE_PROFILE,
                                OpKind.START, OpKind.WAIT_IPV4, OpKind.DELETE, OpKind.BUILD_IMAGE)},
    "provision": _provision, "wait-healthy": _wait_healthy,
}
