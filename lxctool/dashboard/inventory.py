"""What the dashboard shows beside the measurements: each container's stack, service, limits and
environment (secrets masked), health per service, and the last `verify` results.

Everything a sample shows is derived from the instance list the sampler already fetched (no extra
LXD request), from stack files given with -f (read by the stacks loader), and from files `verify`
writes. Health checks run apart, in the hub's one background worker (Health.probe_round).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from lxctool.core import limits as limitmap
from lxctool.lxd.client import Lxd
from lxctool.stacks import model as m
from lxctool.stacks.health import Probe, probe_once
from lxctool.lxd.views import Instance
from lxctool.verify.runner import results_dir

STACK_KEY, SERVICE_KEY = m.STACK_KEY, m.SERVICE_KEY
MASK = "***"
# names that hold a secret even when no stack file lists them
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
HEALTH_EVERY_S = 5.0


def load_stacks(paths: tuple[str, ...]) -> list[m.Stack]:
    """Each -f file through the stacks loader (compose files too); SpecError lists every problem."""
    from lxctool.stacks.load import load_stack  # lazy: jsonschema and yaml only with -f

    return [load_stack(Path(p)) for p in paths]


def mask_environment(config: Mapping[str, str], secret_names: set[str]) -> dict[str, str]:
    """environment.* keys of a container, values of secrets (named in a stack, or by their look) as ***."""
    out = {}
    for key, value in sorted(config.items()):
        if key.startswith("environment."):
            var = key[len("environment."):]
            out[var] = MASK if var in secret_names or SECRET_NAME.search(var) else value
    return out


def stack_of(inst: dict[str, Any], stacks: list[m.Stack]) -> tuple[str | None, str | None]:
    """(stack, service) from the user.lxctool.* keys, else from the STACK-SERVICE-N name of a -f stack."""
    config = Instance(inst).expanded_config  # falls back to its own config
    if config.get(STACK_KEY):
        return config[STACK_KEY], config.get(SERVICE_KEY)
    for st in stacks:
        for svc in st.services:
            if re.fullmatch(rf"{re.escape(st.name)}-{re.escape(svc.name)}-\d+", inst.get("name", "")):
                return st.name, svc.name
    return None, None


def containers(instances: list[dict[str, Any]], stacks: list[m.Stack]) -> dict[str, dict[str, Any]]:
    """Per container: stack, service, configured limits, environment (secrets masked), image."""
    secret_names = {s for st in stacks for s in st.secrets}
    out = {}
    for inst in instances:
        view = Instance(inst)
        config = view.expanded_config
        stack, service = stack_of(inst, stacks)
        out[inst["name"]] = {
            "stack": stack, "service": service, "status": inst.get("status"),
            "image": config.get("image.description") or config.get("volatile.base_image", "")[:12] or None,
            "limits": limitmap.configured_limits(config, view.expanded_devices),
            "environment": mask_environment(config, secret_names),
        }
    return out


class Health:
    """Health per service: replicas running (every sample), and the stacks' own health checks
    (tcp, http, command: stacks/health.py, as `lxctool ps -f` runs them) run by probe_round in
    one background worker every HEALTH_EVERY_S, never in a sample."""

    def __init__(self, stacks: list[m.Stack], lxd: Lxd | None = None) -> None:
        self.stacks = stacks
        self.lxd = lxd          # the worker's own connection: a sample's request count stays constant
        self.probed: dict[str, Probe] = {}
        self.rounds = 0
        self.failure: str | None = None  # why the last round failed as a whole (LXD gone, ...)

    def declared(self) -> dict[tuple[str, str], m.Service]:
        """Every service of the -f stacks, by (stack, service)."""
        return {(st.name, s.name): s for st in self.stacks for s in st.services}

    def has_checks(self) -> bool:
        """True when some -f service declares a health check (a worker is then needed)."""
        return any(s.healthcheck is not None for s in self.declared().values())

    def probe_round(self, ctrs: dict[str, dict[str, Any]], ipv4: dict[str, list[str]]) -> None:
        """Run each running replica's declared check once (blocking: the worker's thread calls it)."""
        declared = self.declared()
        results = {}
        for name, c in sorted(ctrs.items()):
            svc = declared.get((c["stack"], c["service"]))
            if svc is None or svc.healthcheck is None or (c["status"] or "").lower() != "running":
                continue
            hc, addrs = svc.healthcheck, ipv4.get(name) or []
            if not hc.command and not addrs:
                results[name] = Probe(False, "no IPv4 address yet")  # no instance_state request here
            elif hc.command and self.lxd is None:
                results[name] = Probe(False, "command check needs LXD")
            else:
                results[name] = probe_once(self.lxd, name, hc, addrs[0] if addrs else None)  # type: ignore[arg-type]
        self.probed = results
        self.rounds += 1

    def services(self, ctrs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per (stack, service): expected and running replicas, status and why (no I/O)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for name, c in sorted(ctrs.items()):
            if c["stack"]:
                groups.setdefault((c["stack"], c["service"] or "-"), []).append(name)
        declared = self.declared()
        for key in declared:
            groups.setdefault(key, [])
        rows = []
        for (stack, service), names in sorted(groups.items()):
            svc = declared.get((stack, service))
            running = [n for n in names if (ctrs[n]["status"] or "").lower() == "running"]
            expected = svc.replicas if svc else len(names)
            if not running:
                status, detail = "down", "no replica running"
            elif len(running) < expected:
                status, detail = "degraded", f"{len(running)} of {expected} replicas running"
            else:
                status, detail = "running", f"{len(running)} of {expected} running"
                if svc is None:
                    detail += "; give its stack file with -f for health checks"
            notes = [detail]
            results = {n: self.probed[n] for n in running if n in self.probed}
            if svc is not None and svc.healthcheck is not None and running:
                failed = [f"{n}: {p.output}" for n, p in results.items() if not p.healthy]
                if not results:
                    notes.append(self.failure or f"{svc.healthcheck.describe()}: not probed yet")
                elif status == "running" and len(results) == len(running):
                    status = "unhealthy" if failed else "healthy"
                    notes = failed or [next(iter(results.values())).output]
                elif failed:
                    status = "unhealthy" if status == "running" else status
                    notes += failed
            elif svc is not None and svc.healthcheck is None:
                notes.append("no health check declared")
            rows.append({"stack": stack, "service": service, "replicas": expected, "running": len(running),
                         "status": status, "detail": "; ".join(notes), "containers": names,
                         "probes": {n: {"healthy": p.healthy, "output": p.output} for n, p in results.items()}})
        return rows


def verify_results(names: list[str]) -> dict[str, dict[str, Any]]:
    """The last `verify` results of each named container, read from the files `verify` writes."""
    out = {}
    folder = results_dir()
    for name in names:
        try:
            doc = json.loads((folder / f"{name}.json").read_text())
        except (OSError, ValueError):
            continue
        findings = [{k: f.get(k) for k in ("limit", "configured", "measured", "verdict")}
                    for f in doc.get("findings", []) if isinstance(f, dict)]
        out[name] = {"time": doc.get("time"), "exit_code": doc.get("exit_code"), "findings": findings}
    return out
