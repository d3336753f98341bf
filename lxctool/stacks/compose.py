"""docker-compose files -> lxctool stack files (the same dict a stack YAML holds), plus a note for
every key that could not be carried over. Pure except for reading the schema and env_files.

There is no second path: `up -f docker-compose.yml` converts here, then loads the result exactly
as it loads a stack file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Callable

from lxctool.core.errors import SpecError
from lxctool.stacks.compose_service import EXTENSION, Note, ServiceMapper

__all__ = ["COMPOSE_NAMES", "Note", "convert", "is_compose", "stack_name", "validate_schema"]

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
SCHEMA = Path(__file__).with_name("data") / "compose-spec.json"


def is_compose(path: Path, data: Any, force: bool = False) -> bool:
    """Whether a file is read as compose: --compose, its name, or a top-level `version:` key."""
    return force or path.name in COMPOSE_NAMES or (isinstance(data, dict) and "version" in data)


def validate_schema(data: Any) -> list[str]:
    """Errors against the compose specification's JSON schema, each with its path."""
    import jsonschema  # lazy: ~60 ms, only compose files need it

    schema = _with_newer_keys(json.loads(SCHEMA.read_text()))
    validator = jsonschema.Draft201909Validator(schema)
    errors = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(top)"
        errors.append(f"{where}: {err.message}")
    return errors


def _with_newer_keys(schema: dict[str, Any]) -> dict[str, Any]:
    """The shipped schema (compose-spec as of docker-compose 1.29.2) plus keys the specification
    gained since, which today's compose files carry: top-level `name`, `host_ip` in long port
    syntax, `pids` in deploy limits."""
    schema["properties"]["name"] = {"type": "string"}
    defs = schema["definitions"]
    long_port = defs["service"]["properties"]["ports"]["items"]["oneOf"][2]
    long_port["properties"]["host_ip"] = {"type": "string"}
    long_port["properties"]["published"] = {"type": ["integer", "string"]}
    defs["deployment"]["properties"]["resources"]["properties"]["limits"]["properties"]["pids"] = {
        "type": "integer"}
    return schema


def stack_name(data: dict[str, Any], path: Path) -> str:
    """The compose project's name, or its folder's, made LXD-safe."""
    raw = str(data.get("name") or path.resolve().parent.name).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    if not name or not name[0].isalpha():
        name = f"s-{name}".strip("-")
    return name[:40]


class _Converter(ServiceMapper):
    """One compose document -> one stack dict: top-level keys and networks here, each service
    through ServiceMapper (compose_service.py); notes and errors collected in one place."""

    def __init__(self, data: dict[str, Any], folder: Path, allow_bind_mounts: bool,
                 recipe_exists: Callable[[str], bool]) -> None:
        super().__init__(folder, allow_bind_mounts, recipe_exists)
        self.data = data

    def convert(self, name: str) -> dict[str, Any]:
        stack: dict[str, Any] = {"name": name}
        top_ext = self.data.get(EXTENSION) or {}
        if top_ext.get("secrets"):
            stack["secrets"] = list(top_ext["secrets"])  # lxctool secrets: from env/.env, else generated
        for key in ("secrets", "configs"):
            if key in self.data:
                self.note(key, "compose secrets/configs are not carried over; give secrets as ${VAR} "
                               "from the environment or .env (lxctool `secrets:`)")
        for key in self.data:
            if key.startswith("x-") and key != EXTENSION:
                self.note(key, "extension field ignored")
        networks = self._networks(self.data.get("networks") or {})
        services: dict[str, Any] = {}
        for sname, svc in (self.data.get("services") or {}).items():
            out = self.service(sname, svc or {}, stack)
            if out is not None:
                services[sname] = out
        if any("networks" not in s for s in services.values()):
            networks.setdefault("default", {})
            for s in services.values():
                s.setdefault("networks", {"default": {}})
        if networks:
            stack["networks"] = networks
        stack["services"] = services
        return stack

    # -- top-level networks ------------------------------------------------
    def _networks(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for nname, net in raw.items():
            net = net or {}
            where = f"networks.{nname}"
            if net.get("external"):
                self.errors.append(f"{where}.external: an external network cannot be created by a stack; "
                                   "remove `external` or create it with `lxctool network create`")
                continue
            out[nname] = {}
            configs = ((net.get("ipam") or {}).get("config") or [])
            if configs:
                subnet, gateway = configs[0].get("subnet"), configs[0].get("gateway")
                try:
                    iface = ipaddress.ip_network(str(subnet), strict=False)
                    gw = ipaddress.ip_address(gateway) if gateway else next(iface.hosts())
                    if gw not in iface:
                        raise ValueError(f"gateway {gateway} is outside {subnet}")
                    out[nname]["subnet"] = f"{gw}/{iface.prefixlen}"
                except (ValueError, StopIteration) as exc:
                    self.errors.append(f"{where}.ipam.config.0: {exc}; use e.g. subnet: 10.42.9.0/24")
                if len(configs) > 1:
                    self.note(f"{where}.ipam.config", "only the first subnet is used")
            for key in net:
                if key not in ("ipam", "driver", "name"):
                    self.note(f"{where}.{key}", "not carried over (lxctool networks are isolated bridges)")
            if net.get("driver") not in (None, "bridge"):
                self.note(f"{where}.driver", f"{net['driver']!r} becomes an isolated LXD bridge")
        return out


def convert(data: Any, path: Path, *, allow_bind_mounts: bool = False, strict: bool = False,
            recipe_exists: Callable[[str], bool] = lambda name: False) -> tuple[dict[str, Any], list[Note]]:
    """A compose document -> (stack dict, notes); SpecError (every error with its path) when invalid."""
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: a compose file is a mapping with a `services:` key")
    errors = validate_schema(data)
    if errors:
        raise SpecError([f"{path.name}: {e}" for e in errors])
    conv = _Converter(data, path.resolve().parent, allow_bind_mounts, recipe_exists)
    stack = conv.convert(stack_name(data, path))
    errors = conv.errors + ([f"{n.line()} (--strict)" for n in conv.notes if n.dropped] if strict else [])
    if errors:
        raise SpecError([f"{path.name}: {e}" for e in errors])
    return stack, conv.notes
