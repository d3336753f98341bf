"""`up`: apply a prepared stack with the one executor, wave by wave in dependency order.

Each wave is planned when it starts, so templates see the addresses the earlier waves got (DHCP).
Within a wave the executor runs replicas in parallel (bounded); each replica's ops run in order,
then its provisioning, then its health check. Before a replica changes, the services it needs
`healthy` are checked (an interrupted run may have left one failing). A replica that no op
touches is neither provisioned nor probed, so an `up` with nothing to do writes nothing.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from lxctool.apply.executor import apply
from lxctool.core.plan import Desired, Op, OpKind, plan
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.stacks import model as m
from lxctool.stacks import templates
from lxctool.stacks.desired import PROVISION_KEY, build_desired, context
from lxctool.stacks.handlers import STACK_HANDLERS
from lxctool.stacks.state import addresses
from lxctool.stacks.up import PROVISION, WAIT_HEALTHY, Prepared, changes, needs_provision, stack_plan


class Applier:
    """Applies a prepared stack; requests counted by method in counter."""

    def __init__(self, lxd: Lxd, prep: Prepared, parallel: int, counter: collections.Counter[str]) -> None:
        self.lxd, self.prep, self.parallel, self.counter = lxd, prep, max(1, parallel), counter
        self.known: dict[str, list[str]] = addresses(prep.state.records)
        self.healthy: set[str] = set()      # replicas that passed their health check in this run

    def run(self) -> list[Op]:
        """Apply everything; the ops that changed something."""
        prep, stack = self.prep, self.prep.stack
        full = stack_plan(prep)
        names = {n for s in stack.services for n in m.instance_names(stack.name, s)}
        pre = changes([op for op in full if op.target not in names and op.kind not in (OpKind.DELETE, PROVISION)])
        if pre:  # networks, volumes, profiles, images: before any container that uses them
            apply(self.lxd, pre, parallel=1, handlers=STACK_HANDLERS)
        done = list(pre)
        templates.store(stack.name, prep.secrets)
        selected = prep.selected or [s.name for s in stack.services]
        for wave in m.topological_order(tuple(s for s in stack.services if s.name in selected)):
            done += self._wave(wave)
        deletes = [op for op in full if op.kind == OpKind.DELETE]
        if deletes:
            apply(self.lxd, deletes, parallel=self.parallel, handlers=STACK_HANDLERS)
        return done + deletes

    def _wave(self, wave: list[str]) -> list[Op]:
        prep, stack = self.prep, self.prep.stack
        ctx = context(stack, self.known)
        desired = build_desired(stack, prep.state.base, ctx, prep.secrets.values, wave)
        observed = prep.state.observed.instances
        planned = changes(plan(Desired(instances=desired.instances), prep.state.observed))
        checks: list[Op] = []          # dependencies' health, before the replicas that need them
        replicas: list[Op] = []
        touched: list[str] = []
        for d in desired.instances:
            svc = stack.service(d.config[m.SERVICE_KEY])
            mine = [op for op in planned if op.target == d.name]
            fresh = any(op.kind in (OpKind.CREATE, OpKind.RECREATE) for op in mine)
            if PROVISION_KEY in d.config and (fresh or needs_provision(d, observed)):
                mine.append(Op(PROVISION, d.name, payload=(d, svc, ctx, prep.secrets)))
            if not mine:
                continue
            touched.append(d.name)
            if svc.healthcheck is not None:
                mine.append(Op(WAIT_HEALTHY, d.name, payload=(svc, prep.secrets)))
            needs = self._dependency_checks(svc, checks)
            mine[0] = replace(mine[0], after=mine[0].after + tuple(needs))
            replicas += mine
        if not replicas:
            return []
        results = apply(self.lxd, checks + replicas, parallel=self.parallel, handlers=STACK_HANDLERS)
        self.healthy |= {op.target for op, _ in results if op.kind == WAIT_HEALTHY}
        self._learn_addresses(touched)
        return [op for op in replicas if op.kind != WAIT_HEALTHY]

    def _dependency_checks(self, svc: m.Service, checks: list[Op]) -> list[str]:
        """Replicas svc needs healthy that this run has not seen healthy; their checks go in checks."""
        stack = self.prep.stack
        needed = []
        for dep, condition in svc.depends_on:
            dsvc = stack.service(dep)
            if condition != "healthy" or dsvc.healthcheck is None:
                continue
            for name in m.instance_names(stack.name, dsvc):
                if name in self.healthy:
                    continue
                needed.append(name)
                if not any(op.target == name for op in checks):
                    checks.append(Op(WAIT_HEALTHY, name, payload=(dsvc, self.prep.secrets)))
        return needed

    def _learn_addresses(self, names: list[str]) -> None:
        """Addresses of the replicas just changed (one batched read), for the next waves' templates."""
        for inst in self.lxd.instances_full():
            if inst["name"] in names:
                self.known[inst["name"]] = ipv4_addresses(inst.get("state"))

