"""Disk size: write past the root disk's size; ENFORCED when the write stopped at the quota,
UNSUPPORTED (naming the storage driver) when it went past it."""

from __future__ import annotations

import math
import re
import shlex

from lxctool.core import units
from lxctool.host.caps import pool_enforces_quota
from lxctool.verify.workloads import SCRATCH
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding
from lxctool.verify.probes import unsupported

MIB = 2**20
OVERSHOOT = 1.2
UNTESTED_LIMIT = 2 * 10**9   # on a pool that ignores quotas, never write more than this


def probe(ctx: Context) -> list[Finding]:
    """The finding for root.size."""
    value = ctx.configured["root.size"]
    size = units.parse_size(value)
    pool = ctx.instance.root_pool or ""
    driver = (ctx.lxd.storage_pool(pool) or {}).get("driver", "unknown") if pool else "unknown"
    count = math.ceil(size * OVERSHOOT / MIB) + 8
    if not pool_enforces_quota(driver) and count * MIB > UNTESTED_LIMIT:
        return [Finding("root.size", value, "not written", f"pool {pool} ({driver}): writing "
                        f"{units.human_size(count * MIB)} could fill the host",
                        unsupported(f"storage driver {driver} does not enforce a root disk size"),
                        size / 1e6, None, "MB")]
    path = SCRATCH + "-fill"
    ctx.progress(f"disk-size: writing {units.human_size(count * MIB)} past a {value} root disk")
    try:
        q = shlex.quote(path)
        res = ctx.lxd.exec(ctx.name, ["sh", "-c", f"dd if=/dev/zero of={q} bs={MIB} count={count}; "
                                      f"stat -c %s {q}"], timeout=600)
        written = int((re.findall(r"^\d+$", res.stdout, re.M) or ["0"])[-1])
        refused = re.search(r"(quota exceeded|no space left)", res.stderr, re.I)
    finally:
        ctx.lxd.exec(ctx.name, ["rm", "-f", path])
    measured = f"wrote {units.human_size(written)} of {units.human_size(count * MIB)}"
    evidence = f"pool {pool} ({driver}); dd: {refused.group(1) if refused else 'completed'}"
    if refused and written <= size:
        return [Finding("root.size", value, measured + " then refused", evidence, ENFORCED,
                        round(size / 1e6, 3), round(written / 1e6, 3), "MB",
                        details={"written": written, "driver": driver})]
    return [Finding("root.size", value, measured, evidence + f"; {units.human_size(written - size)} past the size",
                    unsupported(f"storage driver {driver} does not enforce a root disk size"),
                    round(size / 1e6, 3), round(written / 1e6, 3), "MB",
                    details={"written": written, "driver": driver})]
