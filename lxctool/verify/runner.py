"""`verify`: prove each configured limit by running a workload that pushes past it and measuring
the result from the host through CgroupReader. Probes live in verify/probes/, one per limit kind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

from lxctool.apply.lifecycle import require_running
from lxctool.core import limits as limitmap
from lxctool.core.errors import SpecError
from lxctool.host.caps import HostCapabilities
from lxctool.host.cgroups import CgroupReader
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Instance
from lxctool.report.progress import progress as report_progress
from lxctool.verify import remote
from lxctool.verify.probes import Context, Finding, cpu, disk, disksize, failing, memory, net, pids

# --only item -> (probe module, the LXD keys it proves)
KINDS: dict[str, tuple[ModuleType, tuple[str, ...]]] = {
    "cpu": (cpu, ("limits.cpu", "limits.cpu.allowance")),
    "memory": (memory, ("limits.memory",)),
    "processes": (pids, ("limits.processes",)),
    "disk-io": (disk, ("root.limits.read", "root.limits.write")),
    "disk-size": (disksize, ("root.size",)),
    "net": (net, ("eth0.limits.ingress", "eth0.limits.egress")),
}
COLUMNS = ["limit", "configured", "measured", "evidence", "verdict"]


def parse_only(text: str | None) -> tuple[str, ...]:
    """'cpu,memory' -> ('cpu', 'memory'); every kind when empty; SpecError naming unknown items."""
    if not text:
        return tuple(KINDS)
    items = [i.strip() for i in text.split(",") if i.strip()]
    bad = [i for i in items if i not in KINDS]
    if bad or not items:
        raise SpecError(f"--only: {', '.join(repr(b) for b in bad) or 'nothing'} "
                        f"{'is' if len(bad) == 1 else 'are'} not a limit kind; use a comma-separated "
                        f"list of {', '.join(KINDS)}")
    return tuple(dict.fromkeys(items))


def context(lxd: Lxd, name: str, duration: float, caps: HostCapabilities,
            progress: Callable[[str], None] = report_progress) -> Context:
    """Check the container runs and collect what it has configured (refusing before any change)."""
    if duration < 1:
        raise SpecError(f"--duration: {duration:g} is too short; use at least 1 second")
    inst = Instance(require_running(lxd, name), lxd.project)
    configured = limitmap.configured_limits(inst.expanded_config, inst.expanded_devices)
    return Context(lxd=lxd, name=name, configured=configured, instance=inst, duration=duration,
                   host_cpus=caps.cpus, host_swap=caps.swap_bytes, reader=CgroupReader(),
                   progress=progress)


def kinds_configured(ctx: Context, kinds: tuple[str, ...]) -> list[str]:
    """The asked kinds that have at least one limit configured on the container."""
    return [k for k in kinds if any(key in ctx.configured for key in KINDS[k][1])]


def run(ctx: Context, kinds: tuple[str, ...]) -> list[Finding]:
    """Run the probe of every asked kind that is configured; one Finding per configured limit."""
    findings: list[Finding] = []
    todo = kinds_configured(ctx, kinds)
    for kind in kinds if len(kinds) < len(KINDS) else ():  # asked for by name: say why nothing ran
        if kind not in todo:
            ctx.progress(f"{kind}: no limit configured on {ctx.name}; skipped")
    if not todo:
        ctx.progress(f"{ctx.name} has no {'such ' if len(kinds) < len(KINDS) else ''}limits configured; "
                     f"nothing to verify (set some with `lxctool limits {ctx.name} ...`)")
    if not ctx.lxd.is_local:  # the remote's cgroup files are on its own machine: measure via the API
        return remote.run(ctx.lxd, ctx.name, ctx.configured, tuple(todo), ctx.duration, ctx.host_cpus,
                          ctx.progress)
    for kind in todo:
        findings.extend(KINDS[kind][0].probe(ctx))
    return findings


def failing_limits(findings: list[Finding]) -> list[str]:
    """The limits found NOT ENFORCED or UNSUPPORTED (`verify` then exits 3)."""
    return [f.limit for f in findings if failing(f.verdict)]


def any_failing(findings: list[Finding]) -> bool:
    """True when a configured limit is NOT ENFORCED or UNSUPPORTED (exit 3)."""
    return bool(failing_limits(findings))


def results_dir() -> Path:
    """Where `verify` keeps each container's last results (LXCTOOL_VERIFY_DIR overrides, for tests)."""
    return Path(os.environ.get("LXCTOOL_VERIFY_DIR") or "/var/lib/lxctool/verify")


def save_results(name: str, rows: list[dict[str, object]], exit_code: int) -> Path:
    """Write the last results of `verify NAME` to results_dir()/NAME.json (read by the dashboard)."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    # written whole then renamed, so a reader never sees half a file
    tmp.write_text(json.dumps({"name": name, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "exit_code": exit_code, "findings": rows}, indent=2))
    tmp.replace(path)
    return path
