"""Memory: allocate 1.5 x the limit in one process; the peak must stay under the page-rounded
limit and the OOM killer must act (or, with swap allowed and present, the rest must go to swap)."""

from __future__ import annotations

import math
import os
import time

from lxctool.core import units
from lxctool.verify.workloads import Background, allocate
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import NOT_ENFORCED
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding
from lxctool.verify.probes import unsupported

OVERSHOOT = 1.5
PAGE = os.sysconf("SC_PAGE_SIZE")


def host_memory(field: str = "MemAvailable") -> int:
    """A /proc/meminfo figure in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def configured_bytes(value: str) -> int:
    """limits.memory in bytes ('128MB', or 'N%' of the host's memory)."""
    value = value.strip()
    if value.endswith("%"):
        return int(host_memory("MemTotal") * float(value[:-1]) / 100)
    return units.parse_size(value)


def measure(ctx: Context, nbytes: int, timeout: float = 60.0) -> dict[str, int]:
    """Allocate nbytes inside; peak in the window, OOM kills and swap seen from the host."""
    before = ctx.cgroup()
    top_usage = top_swap = 0
    with Background(ctx.lxd, ctx.name, allocate(nbytes), ctx.reader) as work:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = ctx.cgroup()
            top_usage = max(top_usage, now.memory_usage or 0)
            top_swap = max(top_swap, now.swap_usage or 0)
            if work.pgid is None or work.pgid < 0 or not any(_in_group(t, work.pgid) for t in now.tasks):
                break
            time.sleep(0.01)
    after = ctx.cgroup()
    # the kernel's peak is since the container started: trust it only when it rose in this window
    peak = after.memory_peak if (after.memory_peak or 0) > (before.memory_peak or 0) else top_usage
    return {"asked": nbytes, "peak": peak or 0, "swap": top_swap,
            "oom_kills": (after.oom_kills or 0) - (before.oom_kills or 0),
            "kernel_limit": after.memory_limit or -1}


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def probe(ctx: Context) -> list[Finding]:
    """The finding for limits.memory."""
    value = ctx.configured["limits.memory"]
    limit = configured_bytes(value)
    rounded = limit // PAGE * PAGE
    asked = math.ceil(limit * OVERSHOOT)
    swap_ok = ctx.configured.get("limits.memory.swap", "true") != "false" and ctx.host_swap > 0
    if asked > host_memory() // 2:
        return [Finding("limits.memory", value, "-", f"allocating {units.human_size(asked)} could "
                        f"starve the host ({units.human_size(host_memory())} available)",
                        unsupported("limit too large to test safely"), limit / 1e6, None, "MB")]
    ctx.progress(f"memory: allocating {units.human_size(asked)} against a {value} limit")
    m = measure(ctx, asked)
    measured = f"peak {units.human_size(m['peak'])} ({m['peak']} B) of {units.human_size(asked)} asked"
    if swap_ok and m["swap"]:
        measured += f"; {units.human_size(m['swap'])} went to swap"
    kernel = "unlimited" if m["kernel_limit"] < 0 else str(m["kernel_limit"])
    evidence = (f"peak {m['peak']} B vs page-rounded limit {rounded} B (kernel limit {kernel}); "
                f"oom_kill +{m['oom_kills']}")
    under = m["peak"] <= rounded
    ok = under and (m["oom_kills"] > 0 or (swap_ok and m["swap"] > 0))
    if not ok:
        evidence += ("; the peak went over the limit" if not under
                     else "; nothing was OOM-killed, so the allocation fitted: the limit was not reached")
    return [Finding("limits.memory", value, measured, evidence, ENFORCED if ok else NOT_ENFORCED,
                    round(limit / 1e6, 3), round(m["peak"] / 1e6, 3), "MB", details=m)]
