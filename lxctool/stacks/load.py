"""Stack file -> Stack: YAML, then the JSON Schema shipped in the package, then the model.

Every problem is collected and reported at once, each with its path in the file
(`services.web.limits.mem: '512XB' is not a size; ...`); nothing on the host is touched.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxctool.core.errors import SpecError
from lxctool.core.spec import parse_limits
from lxctool.stacks import model as m
from lxctool.core.units import UnitError, parse_size
from lxctool.net.attach import PUBLISH_ACCEPTED, PUBLISH_RE
from lxctool.stacks.compose_file import as_stack_document
from lxctool.stacks.validate import check_stack

SCHEMA_PATH = Path(__file__).with_name("schema.json")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The stack file's JSON Schema."""
    return json.loads(SCHEMA_PATH.read_text())


def read(path: Path) -> dict[str, Any]:
    """The YAML document of a stack file as a mapping; SpecError naming the file otherwise."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"-f: cannot read {path}: {exc.strerror}") from None
    data = copy.deepcopy(_parse(str(path), text))  # callers may change their copy
    return as_stack_document(path, data)  # a compose file becomes the stack document it means


@lru_cache(maxsize=4)
def _parse(path: str, text: str) -> dict[str, Any]:
    """Parse once per text (up reads the name first, then the whole file)."""
    import yaml  # lazy: yaml costs ~40 ms; only stack file readers need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a stack file is a mapping with name: and services:")
    return data


def _dotted(parts: Any) -> str:
    return ".".join(str(p) for p in parts)


def _schema_cache() -> Path:
    """Where the hashes of documents that passed the schema are kept (LXCTOOL_CACHE_DIR, for tests)."""
    base = os.environ.get("LXCTOOL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lxctool")
    return Path(base) / "stack-schema-ok"


def _document_key(raw: dict[str, Any]) -> str:
    """A hash of the document and of the schema it was checked against."""
    digest = hashlib.sha256(SCHEMA_PATH.read_bytes())
    digest.update(json.dumps(raw, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def schema_errors(raw: dict[str, Any]) -> list[str]:
    """Every schema violation as 'path: problem; what is accepted'."""
    # a document that passed before passes again: skip jsonschema (80-400 ms to import and run),
    # which made a no-change `up` slow; the meaning checks after this one always run
    key = _document_key(raw)
    mark = _schema_cache() / key
    if mark.exists():
        return []
    errors = _check_schema(raw)
    if not errors:
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except OSError:  # a read-only home: check every time, as before
            pass
    return errors


def _check_schema(raw: dict[str, Any]) -> list[str]:
    # jsonschema pulls in referencing/rpds (~80 ms): loaded only when a stack file is checked
    from jsonschema import Draft202012Validator  # lazy: jsonschema costs ~80 ms; only a stack check needs it

    validator = Draft202012Validator(schema())
    out: list[str] = []
    for err in sorted(validator.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        out.extend(_explain(err))
    return list(dict.fromkeys(out))


def _explain(err: Any) -> list[str]:
    path = _dotted(err.absolute_path)
    where = path or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}))
        extra = re.findall(r"'([^']+)'", err.message.split("(")[-1]) or ["?"]
        return [f"{_dotted([*err.absolute_path, e])}: unknown key; use "
                f"{', '.join(allowed) if allowed else 'a name'}" for e in extra]
    if err.validator == "required":
        key = re.findall(r"'([^']+)'", err.message)[0]
        return [f"{_dotted([*err.absolute_path, key])}: missing; it is required"]
    if err.validator == "oneOf" and err.context and isinstance(err.instance, dict) and path.endswith("depends_on"):
        # the mapping form (branch 1) was meant: say what is wrong inside it
        return [line for sub in err.context if sub.relative_schema_path[0] == 1 for line in _explain(sub)]
    if err.validator == "oneOf" and path.endswith("healthcheck"):
        return [f"{where}: give exactly one of command, http, tcp"]
    if err.validator == "oneOf" and path.endswith("depends_on"):
        return [f"{where}: use a list of services or a mapping service: {{condition: started|healthy}}"]
    if err.validator == "oneOf":
        return [f"{where}: give exactly one of content, source"]
    if err.validator == "type":
        return [f"{where}: {err.instance!r} is not {_kinds(err.validator_value)}"]
    if err.validator == "pattern" and str(err.validator_value).startswith("^/"):
        return [f"{where}: {err.instance!r} is not an absolute path; start it with /"]
    return [f"{where}: {err.message}"]


def _kinds(value: Any) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
             "number": "a number", "boolean": "true or false", "null": "empty"}
    items = value if isinstance(value, list) else [value]
    return " or ".join(names.get(v, str(v)) for v in items)


def _pairs(mapping: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), _scalar(v)) for k, v in (mapping or {}).items())


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build(raw: dict[str, Any], folder: Path, errors: list[str]) -> m.Stack:
    """Turn a schema-valid document into a Stack; field problems are appended to errors."""
    networks = []
    for name, net in (raw.get("networks") or {}).items():
        try:
            iface = ipaddress.IPv4Interface(net["subnet"])
            if "/" not in net["subnet"]:
                raise ValueError
        except ValueError:
            errors.append(f"networks.{name}.subnet: {net['subnet']!r} is not GATEWAY/PREFIX; "
                          "use e.g. 10.40.1.1/24")
            continue
        networks.append(m.StackNetwork(name, iface, bool(net.get("isolated", True))))
    volumes: dict[str, m.StackVolume] = {}
    for name, vol in (raw.get("volumes") or {}).items():
        vol = vol or {}
        size = None
        if vol.get("size") is not None:
            try:
                size = parse_size(vol["size"])
            except UnitError as exc:
                errors.append(f"volumes.{name}.size: {exc}")
        volumes[name] = m.StackVolume(name, size, vol.get("pool"))
    services = []
    for name, svc in raw["services"].items():
        services.append(_service(name, svc, folder, errors))
        for vol_name, _ in services[-1].volumes:
            volumes.setdefault(vol_name, m.StackVolume(vol_name))  # named in a service only: defaults
    mon = raw.get("monitor")
    monitor = None
    if mon:
        monitor = m.Monitor(mon["influxdb"], str(mon.get("database", "lxd")), float(mon.get("interval", 10)),
                            int(mon.get("port", 8086)))
    return m.Stack(name=raw["name"], folder=folder, services=tuple(services), networks=tuple(networks),
                   volumes=tuple(volumes.values()), secrets=tuple(raw.get("secrets") or ()), monitor=monitor)


def _service(name: str, svc: dict[str, Any], folder: Path, errors: list[str]) -> m.Service:
    label = f"services.{name}"
    limits = parse_limits(svc.get("limits") or {}, lambda k: f"{label}.limits.{k}", errors)
    attachments = []
    for net, att in (svc.get("networks") or {}).items():
        att = att or {}
        if "ip" in att and "ips" in att:
            errors.append(f"{label}.networks.{net}: give ip or ips, not both")
        ips = tuple(att.get("ips") or ([att["ip"]] if att.get("ip") else []))
        attachments.append(m.Attachment(net, ips))
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        depends = tuple((d, "started") for d in deps)
    else:
        depends = tuple((d, (c or {}).get("condition", "started")) for d, c in deps.items())
    hc = svc.get("healthcheck")
    health = None
    if hc:
        http = hc.get("http") or {}
        health = m.Healthcheck(tuple(hc.get("command") or ()), http.get("port"), http.get("path", "/"),
                               http.get("status", 200), hc.get("tcp"), float(hc.get("interval", 1)),
                               int(hc.get("retries", 30)), float(hc.get("timeout", 10)),
                               float(hc.get("start_period", 0)))
    prov = svc.get("provision") or {}
    files = []
    for i, f in enumerate(prov.get("files") or []):
        source = None
        if "source" in f:
            source = _source(folder, f["source"], f"{label}.provision.files.{i}.source", errors)
        files.append(m.ProvisionFile(f["path"], f.get("content"), source, int(f.get("mode", "0644"), 8)))
    provision = m.Provision(tuple(files), tuple(tuple(c) for c in prov.get("commands") or ()),
                            _pairs(prov.get("env")))
    published = [_publish(p, f"{label}.publish.{i}", errors) for i, p in enumerate(svc.get("publish") or [])]
    place = svc.get("placement")
    if place is not None and ("member" in place) == ("spread" in place):
        errors.append(f"{label}.placement: give member: NAME or spread: true, not "
                      f"{'both' if place else 'neither'}")
    return m.Service(
        name=name, image=svc["image"], replicas=int(svc.get("replicas", 1)), limits=limits,
        profiles=tuple(svc.get("profiles") or ()), networks=tuple(attachments),
        volumes=tuple((v, p) for v, p in (svc.get("volumes") or {}).items()),
        binds=tuple((host, target.removesuffix(":ro"), target.endswith(":ro"))
                    for host, target in (svc.get("binds") or {}).items()),
        depends_on=depends,
        environment=_pairs(svc.get("environment")), healthcheck=health, provision=provision,
        publish=tuple(p for p in published if p is not None),
        logs=tuple(svc.get("logs") or ()),
        member=(place or {}).get("member"), spread=bool((place or {}).get("spread")))


def _source(folder: Path, source: str, label: str, errors: list[str]) -> Path | None:
    """A provision source file: inside the stack's folder once symlinks are resolved, and there."""
    path = (folder / source).resolve()
    root = folder.resolve()
    if path != root and root not in path.parents:
        errors.append(f"{label}: {source!r} is outside the stack's folder {root}; keep provisioned "
                      "files beside the stack file")
        return None
    if not path.is_file():
        errors.append(f"{label}: {source!r} is not a file in {root}")
        return None
    return path


def _publish(text: str, label: str, errors: list[str]) -> m.Publish | None:

    match = PUBLISH_RE.fullmatch(text.strip())
    if not match:
        errors.append(f"{label}: {text!r} is not a port mapping; use {PUBLISH_ACCEPTED}")
        return None
    hport, cport = int(match["hport"]), int(match["cport"])
    if not (1 <= hport <= 65535 and 1 <= cport <= 65535):
        errors.append(f"{label}: {text!r} has a port out of range; use {PUBLISH_ACCEPTED}")
        return None
    return m.Publish(match["ip"] or "127.0.0.1", hport, cport, match["proto"] or "tcp")


def load_stack(path: Path) -> m.Stack:
    """The one entry from a file to a checked Stack (a compose reader plugs in here)."""
    return load(path)[0]


def load(path: Path) -> tuple[m.Stack, dict[str, Any]]:
    """Read, schema-check and build a stack with its pure meaning checks; SpecError lists all."""
    raw = read(path)
    return load_dict(raw, path.resolve().parent), raw


def load_dict(raw: dict[str, Any], folder: Path) -> m.Stack:
    """A stack-file document (as read, or as a converter made it) -> a checked Stack."""
    errors = schema_errors(raw)
    if errors:
        raise SpecError(errors)
    stack = build(raw, folder, errors)
    errors += check_stack(stack)
    if errors:
        raise SpecError(errors)
    return stack
