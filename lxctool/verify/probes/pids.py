"""Processes: fork sleepers until the kernel refuses; the count must stop at limits.processes
and the pids controller's `max` event counter must rise."""

from __future__ import annotations

import time

from lxctool.verify.workloads import Background, fork_until_refused
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import NOT_ENFORCED
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding

SETTLE_S = 0.3
POLL_S = 0.005


def measure(ctx: Context, limit: int, timeout: float = 20.0) -> dict[str, int]:
    """Fork until refused (at most 2 x limit + 20); tasks when it stopped and event deltas."""
    before = ctx.cgroup()
    cap = 2 * limit + 20
    top = 0
    with Background(ctx.lxd, ctx.name, fork_until_refused(cap), ctx.reader):
        deadline = time.monotonic() + timeout
        last, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = ctx.cgroup()
            current = now.pids_current or 0
            top = max(top, current)
            if current != last:
                last, still_since = current, time.monotonic()
            elif time.monotonic() - still_since >= SETTLE_S and (
                    (now.pids_max_events or 0) > (before.pids_max_events or 0) or current >= cap):
                break  # the count stopped growing: refused, or the cap was reached
            time.sleep(POLL_S)
        after = ctx.cgroup()
    return {"tasks": top, "pids_max_events": (after.pids_max_events or 0) - (before.pids_max_events or 0),
            "kernel_limit": after.pids_max or -1, "cap": cap}


def probe(ctx: Context) -> list[Finding]:
    """The finding for limits.processes."""
    value = ctx.configured["limits.processes"]
    limit = int(value)
    ctx.progress(f"processes: forking until refused (limit {limit})")
    m = measure(ctx, limit)
    kernel = "max" if m["kernel_limit"] < 0 else str(m["kernel_limit"])
    evidence = f"pids.current stopped at {m['tasks']} (pids.max {kernel}); pids.events max +{m['pids_max_events']}"
    # <= rather than ==: a helper LXD forked for the exec may hold a pid at the moment of refusal
    # and leave before a sample sees it; the kernel refuses only at pids.max either way
    ok = m["tasks"] <= limit and m["pids_max_events"] > 0
    if not ok:
        evidence += ("; the count went past the limit" if m["tasks"] > limit
                     else "; forking was not refused at the limit")
    return [Finding("limits.processes", value, f"{m['tasks']} tasks when fork was refused"
                    if m["pids_max_events"] > 0 else f"{m['tasks']} tasks, never refused",
                    evidence, ENFORCED if ok else NOT_ENFORCED, float(limit), float(m["tasks"]),
                    "tasks", details=m)]
