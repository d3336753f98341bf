"""`plan` and `up` of a stack: validate and observe once, plan with the pure planner, then apply
wave by wave in dependency order (replicas and independent services in parallel, bounded).

A replica counts as changed when any op touched it; only changed replicas are provisioned and
health-checked, so an `up` with nothing to do makes no write request at all.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from lxctool.core.errors import LxctoolError, SpecError
from lxctool.core.plan import Desired, DesiredInstance, Op, OpKind, plan
from lxctool.lxd.client import Lxd
from lxctool.report.progress import progress
from lxctool.stacks import model as m
from lxctool.stacks import ops as runner
from lxctool.stacks import templates
from lxctool.stacks.desired import PROVISION_KEY, build_desired, context
from lxctool.stacks.state import StackState, addresses, host_errors, observe

PROVISION = "provision"  # a stack op kind of its own (the planner's kinds plus this one)


class HealthFailed(LxctoolError):
    """A replica never became healthy, or could not be provisioned: dependents were not started."""

    exit_code = 1


@dataclass
class Prepared:
    """A validated stack with its secrets and one observation of the host."""

    stack: m.Stack
    secrets: templates.Secrets
    state: StackState
    selected: list[str] | None = None       # services asked for (with their dependencies)

    def prune(self, obs: Any) -> bool:
        """Containers of this stack that the file (or the selection) no longer wants."""
        svc = obs.config.get(m.SERVICE_KEY)
        names = {s.name for s in self.stack.services}
        return obs.config.get(m.STACK_KEY) == self.stack.name and (
            svc not in names or self.selected is None or svc in self.selected)


def with_scale(stack: m.Stack, scale: Mapping[str, int], errors: list[str]) -> m.Stack:
    """The stack with --scale svc=N applied (unknown services are errors)."""
    names = {s.name for s in stack.services}
    for svc in scale:
        if svc not in names:
            errors.append(f"--scale: {svc!r} is not a service; use one of {', '.join(sorted(names))}")
    services = tuple(replace(s, replicas=scale.get(s.name, s.replicas)) for s in stack.services)
    return replace(stack, services=services)


def _with_dependencies(stack: m.Stack, wanted: list[str]) -> list[str]:
    out: list[str] = []
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name not in out:
            out.append(name)
            todo += [d for d, _ in stack.service(name).depends_on]
    return out


def prepare(lxd: Lxd, path: Path, caps: Any, services: tuple[str, ...] = (),
            scale: Mapping[str, int] | None = None) -> Prepared:
    """Load, check and observe; SpecError listing every problem (nothing changed)."""
    from lxctool.stacks.load import load
    from lxctool.stacks.validate import check_stack, used_variables

    stack, _ = load(path)
    errors: list[str] = []
    if scale:
        stack = with_scale(stack, scale, errors)
        errors += [e for e in check_stack(stack) if e not in errors]
    names = {s.name for s in stack.services}
    for svc in services:
        if svc not in names:
            errors.append(f"SERVICE: {svc!r} is not a service of stack {stack.name}; use one of "
                          f"{', '.join(sorted(names))}")
    sec = templates.resolve(stack.name, stack.folder, used_variables(stack), stack.secrets, errors)
    if errors:
        raise SpecError([sec.mask(e) for e in errors])
    state = observe(lxd, stack, caps)
    errors = host_errors(stack, state, getattr(caps, "cpus", None))
    if errors:
        raise SpecError([sec.mask(e) for e in errors])
    selected = _with_dependencies(stack, list(services)) if services else None
    return Prepared(stack, sec, state, selected)


def _needs_provision(d: DesiredInstance, observed: Mapping[str, Any]) -> bool:
    want = d.config.get(PROVISION_KEY)
    have = observed.get(d.name)
    return bool(want) and (have is None or have.config.get(PROVISION_KEY) != want)


def stack_plan(prep: Prepared) -> list[Op]:
    """Every op `up` would apply now (DHCP addresses not yet known render as UNKNOWN)."""
    ctx = context(prep.stack, addresses(prep.state.records))
    desired = build_desired(prep.stack, prep.state.base, ctx, prep.secrets.values, prep.selected)
    out = plan(desired, prep.state.observed, prune=prep.prune)
    existing = prep.state.observed.instances
    for d in desired.instances:
        if d.name in existing and _needs_provision(d, existing):
            out.append(Op(PROVISION, d.name, reason="provision files or commands changed"))
    return out


def changes(ops: list[Op]) -> list[Op]:
    """The ops that change something."""
    return [op for op in ops if op.kind != OpKind.NOOP]


class Applier:
    """Applies a prepared stack; one connection per worker thread, one request counter."""

    def __init__(self, lxd: Lxd, prep: Prepared, parallel: int, counter: collections.Counter[str]) -> None:
        self.lxd, self.prep, self.parallel, self.counter = lxd, prep, max(1, parallel), counter
        self.stop = threading.Event()
        self.known: dict[str, list[str]] = addresses(prep.state.records)
        self.healthy: set[str] = set()      # replicas that passed their health check in this run
        self._local = threading.local()

    def conn(self) -> Lxd:
        """This thread's connection."""
        if not hasattr(self._local, "lxd"):
            self._local.lxd = runner.clone(self.lxd, self.counter)
        return self._local.lxd  # type: ignore[no-any-return]

    def run(self) -> list[Op]:
        """Apply everything; the ops that changed something."""
        prep, stack = self.prep, self.prep.stack
        full = stack_plan(prep)
        instance_names = {n for s in stack.services for n in m.instance_names(stack.name, s)}
        pre = [op for op in full if op.target not in instance_names and op.kind not in (OpKind.DELETE, PROVISION)]
        for op in changes(pre):
            progress(op.describe())
            runner.run_op(self.lxd, op)
        done = changes(pre)
        templates.store(stack.name, prep.secrets)
        selected = prep.selected or [s.name for s in stack.services]
        for wave in m.topological_order(tuple(s for s in stack.services if s.name in selected)):
            done += self._wave(wave)
        deletes = [op for op in full if op.kind == OpKind.DELETE]
        self._parallel([(lambda op=op: self._delete(op)) for op in deletes])
        return done + deletes

    def _delete(self, op: Op) -> list[Op]:
        runner.run_op(self.conn(), op)
        return [op]

    def _wave(self, wave: list[str]) -> list[Op]:
        prep = self.prep
        ctx = context(prep.stack, self.known)
        desired = build_desired(prep.stack, prep.state.base, ctx, prep.secrets.values, wave)
        ops = plan(Desired(instances=desired.instances), prep.state.observed)
        by_target: dict[str, list[Op]] = collections.defaultdict(list)
        for op in ops:
            by_target[op.target].append(op)
        jobs = [(lambda d=d: self._instance(d, by_target[d.name], ctx)) for d in desired.instances]
        return self._parallel(jobs)

    def _parallel(self, jobs: list[Any]) -> list[Op]:
        out: list[Op] = []
        if not jobs:
            return out
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = [pool.submit(job) for job in jobs]
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except KeyboardInterrupt:
                self.stop.set()
                progress("interrupted: finishing the operations in flight, then stopping "
                         "(run up or down again to converge)")
                for f in futures:
                    f.cancel()
                raise
            errors = [f.exception() for f in finished if f.exception() is not None]
            if errors:
                self.stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                raise errors[0]  # type: ignore[misc]
            for f in futures:
                out += f.result()
        return out

    def _instance(self, d: DesiredInstance, ops: list[Op], ctx: Mapping[str, Any]) -> list[Op]:
        lxd, prep = self.conn(), self.prep
        svc = prep.stack.service(d.config[m.SERVICE_KEY])
        observed = prep.state.observed.instances
        created = False
        done: list[Op] = []
        for op in ops:
            if self.stop.is_set():
                return done
            if op.kind == OpKind.NOOP:
                continue
            if not done:
                self._dependencies_healthy(lxd, svc)
            progress(op.describe())
            if op.kind in (OpKind.CREATE, OpKind.RECREATE):
                if op.kind == OpKind.RECREATE:
                    runner.remove_instance(lxd, d.name)
                body = d.body()
                if PROVISION_KEY in body["config"]:
                    body["config"][PROVISION_KEY] = "pending"  # set to its hash once provisioned
                lxd.create_instance(body)
                created = True
            elif op.kind == OpKind.UPDATE_LIVE and PROVISION_KEY in op.payload["config"]:
                payload = {**op.payload, "config": {**op.payload["config"], PROVISION_KEY: "pending"}}
                runner.run_op(lxd, replace(op, payload=payload))
            elif op.kind == OpKind.WAIT_IPV4:
                self.known[d.name] = runner.wait_ipv4(lxd, d.name, op.detail.get("ipv4"),
                                                      float(op.detail.get("timeout", 60)))
            else:
                runner.run_op(lxd, op)
            done.append(op)
        if created and len(svc.networks) > 1:
            from lxctool.net.attach import configure_extra_nics

            configure_extra_nics(lxd, d.name, {k: dict(v) for k, v in d.devices.items()})
        if (created or _needs_provision(d, observed)) and PROVISION_KEY in d.config:
            progress(f"provisioning {d.name}")
            from lxctool.stacks.provision import provision

            provision(lxd, d.name, svc, ctx, prep.secrets, d.config[PROVISION_KEY])
            done.append(Op(PROVISION, d.name))
        if done and svc.healthcheck is not None:
            self._health(lxd, d, svc)
        return done

    def _dependencies_healthy(self, lxd: Lxd, svc: m.Service) -> None:
        """Before changing a replica: dependencies it needs healthy are (an earlier, interrupted
        run may have left one unhealthy, and unchanged replicas are not checked otherwise)."""
        stack = self.prep.stack
        for dep, condition in svc.depends_on:
            dsvc = stack.service(dep)
            if condition != "healthy" or dsvc.healthcheck is None:
                continue
            for name in m.instance_names(stack.name, dsvc):
                if name not in self.healthy:
                    self._health(lxd, DesiredInstance(name, dsvc.image, {}, {}, ()), dsvc)

    def _health(self, lxd: Lxd, d: DesiredInstance, svc: m.Service) -> None:
        from lxctool.stacks.health import wait_healthy

        assert svc.healthcheck is not None
        ip = next(iter(self.known.get(d.name) or []), None)
        probe = wait_healthy(lxd, d.name, svc.healthcheck, ip, self.stop.is_set)
        if not probe.healthy:
            raise HealthFailed(f"services.{svc.name}: {d.name} is not healthy after "
                               f"{svc.healthcheck.retries} probes ({svc.healthcheck.describe()}); last probe: "
                               f"{self.prep.secrets.mask(probe.output)}; services that depend on it were not started")
        progress(f"{d.name} is healthy")
        self.healthy.add(d.name)
