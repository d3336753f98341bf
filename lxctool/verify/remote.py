"""`verify` on a remote: push past each limit inside the container and measure through the API.

The remote's cgroup files are on another machine, so the measurements come from LXD's instance
state (memory.usage_peak, cpu.usage, processes) and from reads inside the container through
exec. Limits that can only be measured on the host (disk I/O, disk size, network rates) are
skipped with one warning each.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from lxctool.core import units
from lxctool.lxd.client import Lxd
from lxctool.lxd.instance_io import ExecResult
from lxctool.verify.probes import CPU_TOLERANCE, ENFORCED, NOT_ENFORCED, SOFT, Finding, unsupported
from lxctool.verify.workloads import allocate

HOST_ONLY = {"disk-io": "disk I/O rates", "disk-size": "the pool's quota", "net": "NIC rates"}
OVERSHOOT = 1.5


def _state(lxd: Lxd, name: str) -> dict[str, Any]:
    return lxd.instance_state(name) or {}


def _background(lxd: Lxd, name: str, script: str, out: list[ExecResult]) -> threading.Thread:
    """Run script in the container on a connection of its own (one HTTP connection per thread)."""
    own = Lxd(project=lxd.project, transport=lxd.transport)

    def run() -> None:
        out.append(own.exec(name, ["sh", "-c", script], timeout=120))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def memory(lxd: Lxd, name: str, value: str) -> Finding:
    """Allocate 1.5 x limits.memory in one process; it must be killed and the peak stay under."""
    limit = units.parse_size(value)
    res = lxd.exec(name, ["sh", "-c", allocate(int(limit * OVERSHOOT))], timeout=120)
    mem = _state(lxd, name).get("memory") or {}
    peak, swap = int(mem.get("usage_peak") or 0), int(mem.get("swap_usage_peak") or 0)
    ok = peak <= limit and (res.exit_code != 0 or swap > 0)
    return Finding("limits.memory", value, f"peak {units.human_size(peak)}",
                   f"exec: allocating {units.human_size(int(limit * OVERSHOOT))} exited {res.exit_code}; "
                   f"api state memory.usage_peak={peak}, swap_usage_peak={swap}",
                   ENFORCED if ok else NOT_ENFORCED, limit, peak, "bytes")


def processes(lxd: Lxd, name: str, value: str, duration: float) -> Finding:
    """Start sleepers past limits.processes; LXD's process count must stay at or under it."""
    limit = int(value)
    hold = max(3, int(duration))
    script = f"i=0; while [ $i -lt {limit + 20} ]; do sleep {hold} & i=$((i+1)); done; wait"
    out: list[ExecResult] = []
    t = _background(lxd, name, script, out)
    top = 0
    # ash gives up at the first refused fork, but the sleepers it started live on for `hold` s
    end = time.monotonic() + hold - 0.5
    while t.is_alive() or time.monotonic() < end:
        procs = _state(lxd, name).get("processes")  # LXD's figure: the pids cgroup's task count
        top = max(top, procs if isinstance(procs, int) else 0)
        time.sleep(0.2)
    t.join()
    # leave the container as it was: the next exec needs free pids, so wait for the sleepers
    deadline = time.monotonic() + hold + 10
    while time.monotonic() < deadline and (_state(lxd, name).get("processes") or 0) >= limit - 1:
        time.sleep(0.2)
    code = out[0].exit_code if out else -1
    ok = top <= limit and code != 0
    return Finding("limits.processes", value, f"at most {top} processes",
                   f"exec: starting {limit + 20} sleepers exited {code} (fork refused when non-zero); "
                   f"api state processes max={top}", ENFORCED if ok else NOT_ENFORCED, limit, top, "processes")


def cpus(lxd: Lxd, name: str, value: str) -> Finding:
    """limits.cpu: the CPUs the container's init may run on, read inside it."""
    res = lxd.exec(name, ["cat", "/proc/1/status"], timeout=30)
    allowed = next((ln.split(":", 1)[1].strip() for ln in res.stdout.splitlines()
                    if ln.startswith("Cpus_allowed_list:")), "")
    have = units.parse_cpuset(allowed) if allowed else ()
    spec = units.parse_cpu(value)
    ok = len(have) == spec.count if spec.count is not None else tuple(have) == spec.cpuset
    return Finding("limits.cpu", value, f"CPUs {allowed or '?'}",
                   "exec in container: /proc/1/status Cpus_allowed_list", ENFORCED if ok else NOT_ENFORCED,
                   float(spec.cpu_count or 0), float(len(have)), "cpus")


def allowance(lxd: Lxd, name: str, value: str, duration: float, threads: int) -> Finding:
    """limits.cpu.allowance: burn every CPU for duration; CPU time per second must stay at the quota."""
    parts = value.split("/")
    if len(parts) != 2 or not all(p.endswith("ms") for p in parts):
        return Finding("limits.cpu.allowance", value, "-", "a share (cpu.shares), not a cap", SOFT)
    quota = int(parts[0][:-2]) / int(parts[1][:-2])
    secs = max(1, int(duration))
    script = f"for i in $(seq {threads}); do timeout {secs} sh -c 'while :; do :; done' & done; wait"
    before, t0 = int((_state(lxd, name).get("cpu") or {}).get("usage") or 0), time.monotonic()
    lxd.exec(name, ["sh", "-c", script], timeout=secs + 60)
    after, t1 = int((_state(lxd, name).get("cpu") or {}).get("usage") or 0), time.monotonic()
    used = (after - before) / 1e9 / (t1 - t0)
    if used < quota * 0.5:  # the busy loops did not run: nothing was measured
        return Finding("limits.cpu.allowance", value, f"{used:.2f} CPU", "the busy loops used almost no CPU",
                       unsupported("the workload did not load the CPU"), quota, round(used, 3), "cpus")
    ok = used <= quota * (1 + CPU_TOLERANCE)
    return Finding("limits.cpu.allowance", value, f"{used:.2f} CPU", f"api state cpu.usage over "
                   f"{t1 - t0:.1f}s with {threads} busy loops", ENFORCED if ok else NOT_ENFORCED,
                   quota, round(used, 3), "cpus")


def run(lxd: Lxd, name: str, configured: dict[str, str], kinds: tuple[str, ...], duration: float,
        host_cpus: int, progress: Callable[[str], None]) -> list[Finding]:
    """Findings for the asked kinds that can be measured through the API; a warning for the rest."""
    out: list[Finding] = []
    where = lxd.where
    for kind in kinds:
        if kind in HOST_ONLY:
            keys = {"disk-io": ("root.limits.read", "root.limits.write"), "disk-size": ("root.size",),
                    "net": ("eth0.limits.ingress", "eth0.limits.egress")}[kind]
            if any(k in configured for k in keys):
                progress(f"warning: {where}: {HOST_ONLY[kind]} can only be measured on that machine; "
                         f"{kind} skipped")
            continue
        if kind == "memory" and "limits.memory" in configured:
            if configured["limits.memory"].endswith("%"):
                progress(f"warning: limits.memory={configured['limits.memory']} is relative to the "
                         "remote host's memory; memory skipped")
            else:
                out.append(memory(lxd, name, configured["limits.memory"]))
        elif kind == "processes" and "limits.processes" in configured:
            out.append(processes(lxd, name, configured["limits.processes"], duration))
        elif kind == "cpu":
            if "limits.cpu" in configured:
                out.append(cpus(lxd, name, configured["limits.cpu"]))
            if "limits.cpu.allowance" in configured:
                out.append(allowance(lxd, name, configured["limits.cpu.allowance"], duration, host_cpus))
    return out
