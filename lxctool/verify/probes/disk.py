"""Disk I/O: write then read a file with O_DIRECT (buffered writeback escapes the cgroup v1
throttle); the rate must be within 15% of root.limits.write / root.limits.read."""

from __future__ import annotations

import math
import re
import shlex

from lxctool.core import units
from lxctool.core.errors import LxdError
from lxctool.verify.workloads import SCRATCH, direct_read, direct_write
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import NOT_ENFORCED
from lxctool.verify.probes import TOLERANCE
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding

MAX_BYTES = 512 * 2**20
MIB = 2**20


def timed(ctx: Context, argv: list[str]) -> tuple[float, int, str]:
    """Run argv under busybox `time -p`; (seconds, full blocks done, stderr)."""
    res = ctx.lxd.exec(ctx.name, ["sh", "-c", "time -p " + " ".join(shlex.quote(a) for a in argv)],
                       timeout=600)
    real = re.search(r"^real ([\d.]+)", res.stderr, re.M)
    done = re.search(r"^(\d+)\+\d+ records out", res.stderr, re.M)
    if res.exit_code != 0 or real is None or done is None:
        raise LxdError(f"{ctx.name}: {' '.join(argv)} failed: {res.stderr.strip()[:200]}")
    return float(real.group(1)), int(done.group(1)), res.stderr


def plan(rate: units.DiskRate, duration: float) -> tuple[int, int]:
    """(block size, block count) for a transfer of about `duration` seconds at `rate`."""
    if rate.iops:
        return 4096, max(20, math.ceil(rate.value * duration))
    count = max(4, math.ceil(rate.value * duration / MIB))
    return MIB, min(count, MAX_BYTES // MIB)


def _finding(key: str, value: str, rate: units.DiskRate, block: int, blocks: int, seconds: float,
             throttle: dict[str, int]) -> Finding:
    per_s = (blocks if rate.iops else blocks * block) / max(seconds, 1e-3)
    unit = "iops" if rate.iops else "MB/s"
    shown = per_s if rate.iops else per_s / 1e6
    limit = rate.value if rate.iops else rate.value / 1e6
    ok = per_s <= rate.value * (1 + TOLERANCE)
    evidence = (f"blkio throttle {', '.join(f'{d}={v}' for d, v in throttle.items()) or 'none'}; "
                f"{blocks} x {block} B with O_DIRECT in {seconds:.2f} s")
    if ok and per_s < rate.value * (1 - TOLERANCE):
        evidence += "; below the limit: the device, not the throttle, was the bottleneck"
    elif not ok:
        evidence += f"; over the limit + {TOLERANCE:.0%}"
    return Finding(key, value, f"{shown:.2f} {unit}", evidence, ENFORCED if ok else NOT_ENFORCED,
                   round(limit, 3), round(shown, 3), unit,
                   details={"bytes": blocks * block, "seconds": seconds, "rate_per_s": per_s})


def probe(ctx: Context) -> list[Finding]:
    """Findings for root.limits.write and root.limits.read."""
    path = SCRATCH + "-io"
    write_v, read_v = ctx.configured.get("root.limits.write"), ctx.configured.get("root.limits.read")
    rates = {k: units.parse_disk_rate(v) for k, v in (("write", write_v), ("read", read_v)) if v}
    # the read test reads back the file the write test wrote: write at least as much as it reads
    read_plan = plan(rates["read"], ctx.duration) if "read" in rates else None
    block, count = plan(rates["write"], ctx.duration) if "write" in rates else read_plan  # type: ignore[misc]
    if read_plan is not None:
        count = max(count, math.ceil(read_plan[0] * read_plan[1] / block))
    cg = ctx.cgroup()
    findings = []
    try:
        ctx.progress(f"disk-io: writing {units.human_size(block * count)} with O_DIRECT")
        seconds, done, _ = timed(ctx, direct_write(path, block, count))
        if "write" in rates:
            findings.append(_finding("root.limits.write", write_v or "", rates["write"], block, done,
                                     seconds, cg.blkio.get("wiops" if rates["write"].iops else "wbps", {})))
        if "read" in rates:
            rblock, rcount = read_plan  # type: ignore[misc]
            ctx.progress(f"disk-io: reading {units.human_size(rblock * rcount)} back with O_DIRECT")
            argv = direct_read(path, rblock) + [f"count={rcount}"]
            seconds, done, _ = timed(ctx, argv)
            findings.append(_finding("root.limits.read", read_v or "", rates["read"], rblock, done,
                                     seconds, cg.blkio.get("riops" if rates["read"].iops else "rbps", {})))
    finally:
        ctx.lxd.exec(ctx.name, ["rm", "-f", path])
    return findings
