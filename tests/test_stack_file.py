"""Pure tests of stack files: a table of broken files and the error paths they must name, all at
once; names, templates, secrets. No daemon needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from lxctool.core.errors import SpecError
from lxctool.stacks import model as m
from lxctool.stacks import templates
from lxctool.stacks.load import load

GOOD: dict[str, Any] = {
    "name": "demo",
    "secrets": ["DB_PASSWORD"],
    "networks": {"back": {"subnet": "10.40.1.1/24"}},
    "services": {
        "db": {"image": "busybox", "limits": {"cpu": 0.5, "mem": "128MB", "processes": 100},
               "networks": {"back": {"ip": "10.40.1.10"}}, "volumes": {"data": "/var/lib/data"},
               "healthcheck": {"command": ["test", "-d", "/var/lib/data"], "interval": 1, "retries": 30}},
        "web": {"image": "busybox", "replicas": 2, "profiles": ["small"],
                "networks": {"back": {"ips": ["10.40.1.21", "10.40.1.22"]}},
                "depends_on": {"db": {"condition": "healthy"}},
                "environment": {"DB_HOST": "{{ services.db.ipv4 }}"},
                "provision": {"files": [{"path": "/etc/app.conf", "mode": "0640",
                                         "content": "db={{ services.db.ipv4 }}\npw=${DB_PASSWORD}\n"}],
                              "commands": [["sh", "-c", "echo ready > /tmp/ready"]]},
                "healthcheck": {"command": ["test", "-f", "/tmp/ready"]}},
        "lb": {"image": "nginx", "networks": {"back": {}}, "depends_on": {"web": {"condition": "healthy"}},
               "healthcheck": {"http": {"port": 80, "path": "/", "status": 200}}, "publish": ["8080:80"]},
    },
}


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc)
    return path


def errors_of(tmp_path: Path, doc: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(write(tmp_path, doc))
    return info.value.errors


def patched(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of GOOD with the dotted path set (value None deletes it)."""
    doc = yaml.safe_load(yaml.safe_dump(base or GOOD, sort_keys=False))
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


def test_the_issue_example_loads(tmp_path: Path) -> None:
    stack, _ = load(write(tmp_path, GOOD))
    assert [s.name for s in stack.services] == ["db", "web", "lb"]
    assert stack.service("web").replicas == 2
    assert stack.service("db").limits.memory == 128_000_000
    assert stack.service("lb").publish[0] == m.Publish("127.0.0.1", 8080, 80)
    assert m.topological_order(stack.services) == [["db"], ["web"], ["lb"]]


BROKEN = [
    ("services.db.limits.mem", "512XB", "services.db.limits.mem: '512XB' is not a size"),
    ("services.db.limits.bogus", 1, "services.db.limits.bogus: unknown limit"),
    ("services.web.replicas", 0, "services.web.replicas: 0 must be at least 1"),
    ("services.web.color", "red", "services.web.color: unknown key"),
    ("services.web.image", None, "services.web.image: missing"),
    ("services.db.depends_on", {"lb": {}}, "dependency cycle db -> lb -> web -> db"),
    ("services.web.depends_on", {"cache": {}}, "services.web.depends_on.cache: no such service"),
    ("services.web.depends_on", {"db": {"condition": "ready"}}, "services.web.depends_on.db.condition"),
    ("services.web.networks.back.ips", ["10.40.1.21"], "services.web.networks.back.ips: 1 addresses for 2 replicas"),
    ("services.web.networks.back.ips", ["10.40.1.21", "10.40.1.10"], "10.40.1.10 is also given to services.db"),
    ("services.db.networks.back.ip", "10.40.2.10", "services.db.networks.back.ip: 10.40.2.10 is outside network back"),
    ("services.db.networks.back.ip", "10.40.1.1", "services.db.networks.back.ip: 10.40.1.1 is the bridge's own address"),
    ("services.web.publish", ["8081:80"], "services.web.publish: a host port reaches one container"),
    ("services.lb.publish", ["80:x"], "services.lb.publish.0: '80:x' is not a port mapping"),
    ("name", "Demo_1", "name: 'Demo_1' is not a valid stack name"),
    ("name", "d" * 60, "services.db: container name"),
    ("services.web.environment.DB_HOST", "{{ services.cache.ipv4 }}",
     "services.web.environment.DB_HOST: template names service 'cache'"),
    ("services.web.environment.DB_HOST", "{{ services.db.ipv4 ", "services.web.environment.DB_HOST: template error"),
    ("services.web.environment.LB", "{{ services.lb.ipv4s|join(',') }}",
     "services.web.environment.LB: the address of lb is known only once it runs (DHCP); add lb to"),
    ("services.web.environment.PW", "${DB_PASSWORD}", "services.web.environment.PW: secret ${DB_PASSWORD} would be stored"),
    ("services.db.healthcheck", {"tcp": 1, "http": {"port": 80}}, "services.db.healthcheck: give exactly one of"),
    ("services.db.volumes", {"data": "relative"}, "services.db.volumes.data: 'relative' is not an absolute path"),
    ("networks.back.subnet", "10.40.1.0", "networks.back.subnet: '10.40.1.0' is not GATEWAY/PREFIX"),
    ("monitor", {"influxdb": "metrics"}, "monitor.influxdb: 'metrics' is not a service"),
    ("services.web.placement", {"member": "m1", "spread": True},
     "services.web.placement: give member: NAME or spread: true, not both"),
    ("services.web.placement", {}, "services.web.placement: give member: NAME or spread: true, not neither"),
    ("services.web.placement", {"rack": 1}, "services.web.placement.rack: unknown key; use member, spread"),
    ("services.web.provision.files", [{"path": "/x", "source": "../outside.txt"}],
     "services.web.provision.files.0.source: '../outside.txt' is outside the stack's folder"),
]


@pytest.mark.parametrize("path,value,expected", BROKEN, ids=[b[0] + ":" + str(i) for i, b in enumerate(BROKEN)])
def test_broken_stack_file_names_the_path(tmp_path: Path, path: str, value: Any, expected: str) -> None:
    (tmp_path.parent / "outside.txt").write_text("secret")
    errors = errors_of(tmp_path, patched(path, value))
    assert any(expected in e for e in errors), errors


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    doc = patched("services.db.limits.mem", "512XB")
    doc = patched("services.db.depends_on", {"lb": {}}, doc)
    doc = patched("services.web.replicas", 3, doc)
    doc = patched("services.web.environment.X", "{{ services.nope.name }}", doc)
    errors = errors_of(tmp_path, doc)
    joined = "\n".join(errors)
    for part in ("services.db.limits.mem: '512XB' is not a size", "dependency cycle",
                 "services.web.networks.back.ips: 2 addresses for 3 replicas", "template names service 'nope'"):
        assert part in joined
    assert len(errors) == 4, errors


def test_schema_errors_come_before_meaning_and_name_their_path(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"name": "x", "services": {"a": {"image": 3, "replicas": "two"}}})
    assert "services.a.image: 3 is not a string" in errors
    assert "services.a.replicas: 'two' is not a whole number" in errors


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    assert "not valid YAML" in errors_of(tmp_path, "name: [unclosed\n")[0]
    assert "a stack file is a mapping" in errors_of(tmp_path, "- 1\n")[0]


def test_symlinked_source_that_leaves_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    outside.write_text("x")
    (tmp_path / "link.txt").symlink_to(outside)
    (tmp_path / "inside.txt").write_text("ok")
    doc = patched("services.web.provision.files", [{"path": "/a", "source": "link.txt"},
                                                    {"path": "/b", "source": "inside.txt"}])
    errors = errors_of(tmp_path, doc)
    assert len(errors) == 1 and "files.0.source: 'link.txt' is outside" in errors[0]


def test_network_names_are_shortened_with_a_hash_to_15_characters() -> None:
    assert m.network_name("demo", "back") == "demo-back"
    long = m.network_name("mediawiki", "backend")
    assert len(long) <= 15 and long.startswith("mediawiki-")
    assert long != m.network_name("mediawiki", "backenx")
    assert m.instance_name("demo", "web", 1) == "demo-web-1"


def test_templates_are_sandboxed_and_render_services() -> None:
    ctx = {"services": {"db": {"ipv4": "10.0.0.5", "ipv4s": ["10.0.0.5"], "name": "d-db-1", "names": ["d-db-1"]}}}
    assert templates.render("{{ services.db.ipv4 }}:{{ services.db.names|join(',') }}", ctx) == "10.0.0.5:d-db-1"
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        templates.render("{{ services.__class__.__mro__[1].__subclasses__() }}", ctx)
    assert templates.referenced_services("{{ services['a'].ipv4 }} {{ services.b.name }}") == {"a", "b"}


def test_secrets_come_from_env_then_dotenv_then_are_generated_once(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LXCTOOL_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PW", raising=False)
    (tmp_path / ".env").write_text("# comment\nFROM_FILE='file value'\n")
    monkeypatch.setenv("FROM_ENV", "env value")
    errors: list[str] = []
    sec = templates.resolve("s1", tmp_path, {"FROM_ENV", "FROM_FILE", "PW"}, {"PW"}, errors)
    assert errors == []
    assert sec.values["FROM_ENV"] == "env value" and sec.values["FROM_FILE"] == "file value"
    generated = sec.values["PW"]
    assert len(generated) >= 20 and sec.mask(f"pw={generated}") == "pw=***"
    templates.store("s1", sec)
    path = tmp_path / "state" / "s1" / "secrets.env"
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = templates.resolve("s1", tmp_path, {"PW"}, {"PW"}, [])
    assert again.values["PW"] == generated and not again.generated
    missing: list[str] = []
    templates.resolve("s1", tmp_path, {"NOPE"}, set(), missing)
    assert missing and missing[0].startswith("${NOPE}: not set")


def test_source_files_are_templates_checked_like_content(tmp_path: Path) -> None:
    (tmp_path / "good.conf").write_text("db={{ services.db.ipv4 }} pw=${DB_PASSWORD} shell=${HOME:-/}\n")
    (tmp_path / "bad.conf").write_text("x={{ services.nope.name }}\n")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe{{")
    doc = patched("services.web.provision.files", [{"path": "/a", "source": "good.conf"},
                                                    {"path": "/b", "source": "bad.conf"},
                                                    {"path": "/c", "source": "blob.bin"}])
    errors = errors_of(tmp_path, doc)
    assert errors == ["services.web.provision.files.1.source (bad.conf): template names service 'nope', "
                      "which is not in this stack; use one of db, lb, web"]
