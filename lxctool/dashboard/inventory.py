"""What the dashboard shows beside the measurements: each container's stack, service, limits and
environment (secrets masked), health per service, and the last `verify` results.

Everything here is derived from the instance list the sampler already fetched (no extra LXD
request), from stack files given with -f, and from files `verify` writes.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxctool.core import limits as limitmap
from lxctool.core.errors import SpecError
from lxctool.verify.runner import results_dir

STACK_KEY, SERVICE_KEY = "user.lxctool.stack", "user.lxctool.service"
MASK = "***"
# names that hold a secret even when no stack file lists them
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
HEALTH_EVERY_S = 5.0
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Service:
    """The few keys of a stack file's service that the dashboard uses."""

    name: str
    replicas: int = 1
    healthcheck: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stack:
    """A stack file as the dashboard reads it: name, secret names, services."""

    name: str
    secrets: tuple[str, ...]
    services: tuple[Service, ...]


def load_stack(path: str) -> Stack:
    """Read the keys the dashboard needs from a stack file; SpecError naming the file otherwise.

    Full validation belongs to `lxctool plan -f`; this only refuses what it cannot read.
    """
    import yaml  # lazily: only the dashboard with -f needs it

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SpecError(f"-f: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"-f: {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str) or not isinstance(doc.get("services"), dict):
        raise SpecError(f"-f: {path} is not a stack file; it needs `name:` and `services:` (see `lxctool plan --help`)")
    services = []
    for sname, svc in doc["services"].items():
        svc = svc if isinstance(svc, dict) else {}
        replicas = svc.get("replicas", 1)
        check = svc.get("healthcheck")
        services.append(Service(str(sname), replicas if isinstance(replicas, int) and replicas > 0 else 1,
                                check if isinstance(check, dict) else {}))
    secrets = doc.get("secrets") or []
    return Stack(doc["name"], tuple(str(s) for s in secrets if isinstance(s, (str, int))), tuple(services))


def mask_environment(config: dict[str, str], secret_names: set[str]) -> dict[str, str]:
    """environment.* keys of a container, values of secrets (named in a stack, or by their look) as ***."""
    out = {}
    for key, value in sorted(config.items()):
        if key.startswith("environment."):
            var = key[len("environment."):]
            out[var] = MASK if var in secret_names or SECRET_NAME.search(var) else value
    return out


def stack_of(inst: dict[str, Any], stacks: list[Stack]) -> tuple[str | None, str | None]:
    """(stack, service) from the user.lxctool.* keys, else from the STACK-SERVICE-N name of a -f stack."""
    config = inst.get("expanded_config") or inst.get("config") or {}
    if config.get(STACK_KEY):
        return config[STACK_KEY], config.get(SERVICE_KEY)
    for st in stacks:
        for svc in st.services:
            if re.fullmatch(rf"{re.escape(st.name)}-{re.escape(svc.name)}-\d+", inst.get("name", "")):
                return st.name, svc.name
    return None, None


def containers(instances: list[dict[str, Any]], stacks: list[Stack]) -> dict[str, dict[str, Any]]:
    """Per container: stack, service, configured limits, environment (secrets masked), image."""
    secret_names = {s for st in stacks for s in st.secrets}
    out = {}
    for inst in instances:
        config = inst.get("expanded_config") or {}
        stack, service = stack_of(inst, stacks)
        out[inst["name"]] = {
            "stack": stack, "service": service, "status": inst.get("status"),
            "image": config.get("image.description") or config.get("volatile.base_image", "")[:12] or None,
            "limits": limitmap.configured_limits(config, inst.get("expanded_devices") or {}),
            "environment": mask_environment(config, secret_names),
        }
    return out


def probe(check: dict[str, Any], address: str) -> tuple[bool, str]:
    """Run a tcp or http health check against a container's address from the host."""
    if "tcp" in check:
        port = int(check["tcp"])
        try:
            socket.create_connection((address, port), timeout=PROBE_TIMEOUT_S).close()
            return True, f"tcp {port} open"
        except OSError as exc:
            return False, f"tcp {port}: {exc.strerror or exc}"
    http = check["http"] if isinstance(check.get("http"), dict) else {}
    port, path, want = int(http.get("port", 80)), str(http.get("path", "/")), int(http.get("status", 200))
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=PROBE_TIMEOUT_S) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return False, f"http {port}{path}: {getattr(exc, 'reason', exc)}"
    return status == want, f"http {port}{path} answered {status}"


class Health:
    """Health per service: replicas running, plus tcp/http checks of -f stacks every few seconds."""

    def __init__(self, stacks: list[Stack]) -> None:
        self.stacks = stacks
        self._probed: dict[str, tuple[bool, str]] = {}
        self._when = 0.0

    def services(self, ctrs: dict[str, dict[str, Any]], ipv4: dict[str, list[str]]) -> list[dict[str, Any]]:
        """One row per (stack, service): expected and running replicas, status and why."""
        groups: dict[tuple[str, str], list[str]] = {}
        for name, c in sorted(ctrs.items()):
            if c["stack"]:
                groups.setdefault((c["stack"], c["service"] or "-"), []).append(name)
        declared = {(st.name, s.name): s for st in self.stacks for s in st.services}
        for key in declared:
            groups.setdefault(key, [])
        due = time.monotonic() - self._when >= HEALTH_EVERY_S
        if due:
            self._when = time.monotonic()
        rows = []
        for (stack, service), names in sorted(groups.items()):
            svc = declared.get((stack, service))
            running = [n for n in names if (ctrs[n]["status"] or "").lower() == "running"]
            expected = svc.replicas if svc else len(names)
            check = svc.healthcheck if svc else {}
            if not running:
                status, detail = "down", "no replica running"
            elif len(running) < expected:
                status, detail = "degraded", f"{len(running)} of {expected} replicas running"
            else:
                status, detail = "running", f"{len(running)} of {expected} running"
                if svc is None:
                    detail += "; give its stack file with -f for health checks"
            notes = [detail]
            if running and ("tcp" in check or "http" in check):
                for n in running:
                    addrs = ipv4.get(n) or []
                    if due or n not in self._probed:
                        self._probed[n] = probe(check, addrs[0]) if addrs else (False, "no IPv4 address")
                results = [self._probed[n] for n in running]
                failed = [f"{n}: {why}" for n, (ok, why) in zip(running, results) if not ok]
                if status == "running":
                    status = "unhealthy" if failed else "healthy"
                notes = failed or [results[0][1]] + (notes if status == "degraded" else [])
            elif check.get("command"):
                # exec inside the container would add LXD requests to every sample; `lxctool ps` runs it
                notes.append("command check not run by the dashboard (see `lxctool ps -f`)")
            elif svc is not None and not check:
                notes.append("no health check declared")
            detail = "; ".join(notes)
            rows.append({"stack": stack, "service": service, "replicas": expected, "running": len(running),
                         "status": status, "detail": detail, "containers": names})
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
