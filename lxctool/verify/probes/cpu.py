"""CPU: busy loops on every host CPU; CPU time per second against the quota or the cpuset."""

from __future__ import annotations

import time
from typing import Any

from lxctool.core import units
from lxctool.verify.workloads import Background, cpu_burn
from lxctool.verify.probes import CPU_TOLERANCE
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import NOT_ENFORCED
from lxctool.verify.probes import SOFT
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding

WARM_UP_S = 0.5


def measure(ctx: Context, threads: int | None = None) -> dict[str, Any]:
    """Burn `threads` loops for ctx.duration seconds; CPUs used and counter deltas."""
    threads = threads or ctx.host_cpus
    with Background(ctx.lxd, ctx.name, cpu_burn(threads), ctx.reader):
        time.sleep(WARM_UP_S)
        before, t0 = ctx.cgroup(), time.monotonic()
        time.sleep(ctx.duration)
        after, t1 = ctx.cgroup(), time.monotonic()
    used_s = ((after.cpu_usage_ns or 0) - (before.cpu_usage_ns or 0)) / 1e9
    return {"threads": threads, "seconds": t1 - t0, "cpu_seconds": used_s, "cpus": used_s / (t1 - t0),
            "nr_throttled": (after.cpu_nr_throttled or 0) - (before.cpu_nr_throttled or 0),
            "throttled_s": ((after.cpu_throttled_ns or 0) - (before.cpu_throttled_ns or 0)) / 1e9,
            "quota_us": after.cpu_quota_us or -1, "period_us": after.cpu_period_us or 0,
            "shares": after.cpu_shares if after.cpu_shares is not None else (after.cpu_weight or 0),
            "cpuset": after.cpuset or ""}


def probe(ctx: Context) -> list[Finding]:
    """Findings for limits.cpu and limits.cpu.allowance (whichever are configured)."""
    allowance = ctx.configured.get("limits.cpu.allowance")
    count = ctx.configured.get("limits.cpu")
    ctx.progress(f"cpu: {ctx.host_cpus} busy loops for {ctx.duration:g}s")
    m = measure(ctx)
    used = (f"{m['cpus']:.3f} CPU ({m['cpu_seconds']:.2f} s CPU in {m['seconds']:.2f} s, "
            f"{m['threads']} busy loops)")
    kernel = (f"cfs_quota_us={m['quota_us']:.0f} period_us={m['period_us']:.0f}; "
              f"nr_throttled +{m['nr_throttled']:.0f}, throttled {m['throttled_s']:.2f} s")
    findings = []
    if allowance:
        a = units.parse_allowance(allowance)
        if a.hard:
            q = a.cpus or 0.0
            ok = m["cpus"] <= q * (1 + CPU_TOLERANCE) and m["nr_throttled"] > 0
            why = "" if ok else (f"; over the quota {q:g} CPU + 5%" if m["cpus"] > q * (1 + CPU_TOLERANCE)
                                 else "; the throttling counter did not rise")
            findings.append(Finding("limits.cpu.allowance", allowance, used, kernel + why,
                                    ENFORCED if ok else NOT_ENFORCED, q, round(m["cpus"], 4), "CPU",
                                    details=m))
        else:
            findings.append(Finding("limits.cpu.allowance", allowance, used,
                                    f"a soft share (cpu.shares={m['shares']:.0f}), not a cap: it only "
                                    f"weighs this container against busy neighbours; {kernel}",
                                    SOFT, None, round(m["cpus"], 4), "CPU", details=m))
    if count:
        n = units.parse_cpu(count).cpu_count or 0
        ok = m["cpus"] <= n * (1 + CPU_TOLERANCE)
        note = "" if n < ctx.host_cpus else f"; {n} of the host's {ctx.host_cpus} CPUs is no restriction"
        findings.append(Finding("limits.cpu", count, used,
                                f"cpuset.cpus={m['cpuset']} ({n} CPU{'s' if n != 1 else ''}){note}",
                                ENFORCED if ok else NOT_ENFORCED, float(n), round(m["cpus"], 4), "CPU",
                                details=m))
    return findings
