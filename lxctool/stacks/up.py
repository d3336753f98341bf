"""`plan` of a stack (and what `up` starts from): validate and observe once, then the pure
planner's ops plus the stack's own `provision` op where provisioning is due. apply.py applies."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from lxctool.core.errors import SpecError
from lxctool.core.plan import DesiredInstance, Op, OpKind, plan
from lxctool.lxd.client import Lxd
from lxctool.stacks import model as m
from lxctool.stacks import templates
from lxctool.stacks.desired import PROVISION_KEY, build_desired, context
from lxctool.stacks.state import StackState, addresses, host_errors, observe
from lxctool.stacks.load import load_stack
from lxctool.stacks.validate import check_stack, used_variables

PROVISION = "provision"        # stack op kinds of their own, applied by the one executor
WAIT_HEALTHY = "wait-healthy"


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


def prepare(lxd: Lxd, source: Path | m.Stack, caps: Any, services: tuple[str, ...] = (),
            scale: Mapping[str, int] | None = None) -> Prepared:
    """Load (or take a Stack a converter made), check and observe; SpecError listing every problem."""
    stack = load_stack(source) if isinstance(source, Path) else source
    errors: list[str] = [] if isinstance(source, Path) else check_stack(stack)
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


def needs_provision(d: DesiredInstance, observed: Mapping[str, Any]) -> bool:
    """Whether a replica has provisioning to do (new, changed, or an earlier run stopped first)."""
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
        if d.name in existing and needs_provision(d, existing):
            out.append(Op(PROVISION, d.name, reason="provision files or commands changed"))
    return out


def changes(ops: list[Op]) -> list[Op]:
    """The ops that change something."""
    return [op for op in ops if op.kind != OpKind.NOOP]
