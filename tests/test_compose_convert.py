"""Pure: compose snippets -> the stack they become, and compose schema errors with their paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lxctool.core.errors import SpecError
from lxctool.stacks.compose import convert, is_compose
from lxctool.stacks.compose_units import compose_bytes, compose_seconds
from lxctool.stacks.convert import stack_yaml

RECIPES = {"busybox", "nginx", "mariadb", "mediawiki", "influxdb"}


def conv(text: str, **kw: Any) -> tuple[dict[str, Any], list[str]]:
    stack, notes = convert(yaml.safe_load(text), Path("/srv/lab/docker-compose.yml"),
                           recipe_exists=RECIPES.__contains__, **kw)
    return stack, [n.line() for n in notes]


def service(text: str, **kw: Any) -> dict[str, Any]:
    return conv("services:\n  s:\n" + "".join(f"    {line}\n" for line in text.strip().splitlines()), **kw)[0][
        "services"]["s"]


@pytest.mark.parametrize("snippet, limits", [
    ("image: busybox\ncpus: 0.5", {"cpu-allowance": "50ms/100ms"}),
    ("image: busybox\ncpus: '1.5'", {"cpu-allowance": "150ms/100ms"}),
    ("image: busybox\ndeploy: {resources: {limits: {cpus: '0.25'}}}", {"cpu-allowance": "25ms/100ms"}),
    ("image: busybox\nmem_limit: 512m", {"mem": "512MiB"}),
    ("image: busybox\nmem_limit: 1g", {"mem": "1GiB"}),
    ("image: busybox\nmem_limit: 104857600", {"mem": "100MiB"}),
    ("image: busybox\ndeploy: {resources: {limits: {memory: 300M}}}", {"mem": "300MiB"}),
    ("image: busybox\npids_limit: 100", {"processes": 100}),
    ("image: busybox\ndeploy: {resources: {limits: {pids: 50}}}", {"processes": 50}),
    ("image: busybox\ncpuset: '0-1'", {"cpu": "0-1"}),
    ("image: busybox\ncpuset: '1'", {"cpu": "1-1"}),      # a lone CPU is pinned, not a count
    ("image: busybox\ncpu_shares: 512", {"cpu-allowance": "50%"}),
    ("image: busybox\ncpu_shares: 2048", {"cpu-allowance": "200%"}),
])
def test_limits_map_to_hard_and_soft_forms(snippet: str, limits: dict[str, Any]) -> None:
    assert service(snippet)["limits"] == limits


def test_mapped_limits_parse_as_lxctool_limits_with_the_same_meaning() -> None:
    from lxctool.core.spec import parse_limits

    errors: list[str] = []
    lim = parse_limits(service("image: busybox\ncpus: 0.5\nmem_limit: 512m\npids_limit: 7")["limits"],
                       str, errors)
    assert errors == []
    assert lim.memory == 536870912 and lim.processes == 7
    assert lim.cpu_allowance is not None and lim.cpu_allowance.hard
    assert (lim.cpu_allowance.quota_us, lim.cpu_allowance.period_us) == (50000, 100000)


@pytest.mark.parametrize("value, seconds", [("1m30s", 90), ("10s", 10), ("500ms", 0.5), ("1h", 3600),
                                            (30, 30), ("2m", 120)])
def test_durations(value: Any, seconds: float) -> None:
    assert compose_seconds(value) == seconds


def test_sizes_are_powers_of_1024() -> None:
    assert compose_bytes("512m") == 512 * 1024 ** 2 and compose_bytes("100kb") == 102400
    assert compose_bytes("2G") == 2 * 1024 ** 3 and compose_bytes(4096) == 4096


def test_ports_bind_loopback_unless_an_address_is_given() -> None:
    svc = service("image: nginx\nports: ['8080:80', '0.0.0.0:8443:443', '5353:53/udp', "
                  "{target: 81, published: 8081, host_ip: 127.0.0.2}]")
    assert svc["publish"] == ["127.0.0.1:8080:80", "0.0.0.0:8443:443", "127.0.0.1:5353:53/udp",
                              "127.0.0.2:8081:81"]


def test_environment_list_and_mapping_and_env_file(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("# comment\nFROM_FILE=1\nSHARED=file\n")
    doc = {"services": {"s": {"image": "busybox", "env_file": "app.env",
                              "environment": ["SHARED=inline", "PASSTHROUGH"]}}}
    stack, _ = convert(doc, tmp_path / "compose.yaml", recipe_exists=RECIPES.__contains__)
    assert stack["services"]["s"]["environment"] == {"FROM_FILE": "1", "SHARED": "inline",
                                                     "PASSTHROUGH": "${PASSTHROUGH}"}


def test_depends_on_both_forms() -> None:
    assert service("image: busybox\ndepends_on: [db]")["depends_on"] == {"db": {"condition": "started"}}
    svc = service("image: busybox\ndepends_on: {db: {condition: service_healthy}, "
                  "q: {condition: service_started}}")
    assert svc["depends_on"] == {"db": {"condition": "healthy"}, "q": {"condition": "started"}}


def test_healthcheck_cmd_and_cmd_shell_and_durations() -> None:
    svc = service("image: busybox\nhealthcheck: {test: [CMD, test, -f, /x], interval: 1m30s, "
                  "timeout: 5s, start_period: 500ms, retries: 4}")
    assert svc["healthcheck"] == {"command": ["test", "-f", "/x"], "interval": 90, "timeout": 5,
                                  "start_period": 0.5, "retries": 4}
    svc = service("image: busybox\nhealthcheck: {test: [CMD-SHELL, 'wget -q -O- localhost']}")
    assert svc["healthcheck"] == {"command": ["sh", "-c", "wget -q -O- localhost"]}
    assert "healthcheck" not in service("image: busybox\nhealthcheck: {test: [NONE]}")


def test_networks_ipam_subnet_and_gateway_and_default_network() -> None:
    stack, _ = conv("""
services:
  a: {image: busybox, networks: {back: {ipv4_address: 10.42.9.10}}}
  b: {image: busybox}
networks:
  back: {ipam: {config: [{subnet: 10.42.9.0/24}]}}
  gw: {ipam: {config: [{subnet: 10.42.8.0/24, gateway: 10.42.8.254}]}}
""")
    assert stack["networks"] == {"back": {"subnet": "10.42.9.1/24"}, "gw": {"subnet": "10.42.8.254/24"},
                                 "default": {}}
    assert stack["services"]["a"]["networks"] == {"back": {"ip": "10.42.9.10"}}
    assert stack["services"]["b"]["networks"] == {"default": {}}


def test_volumes_named_and_bind_mounts_only_when_allowed() -> None:
    assert service("image: busybox\nvolumes: ['data:/var/lib/data']")["volumes"] == {"data": "/var/lib/data"}
    with pytest.raises(SpecError) as exc:
        service("image: busybox\nvolumes: ['./conf:/etc/conf']")
    assert "services.s.volumes.0" in str(exc.value) and "--allow-bind-mounts" in str(exc.value)
    svc = service("image: busybox\nvolumes: ['./conf:/etc/conf']", allow_bind_mounts=True)
    assert svc["binds"] == {"/srv/lab/conf": "/etc/conf"}


def test_replicas_image_mapping_and_extension() -> None:
    assert service("image: busybox\ndeploy: {replicas: 3}")["replicas"] == 3
    assert service("image: library/nginx:1.25")["image"] == "nginx"
    assert service("build: ./web\nx-lxctool: {image: mediawiki}")["image"] == "mediawiki"
    with pytest.raises(SpecError) as exc:
        service("build: ./web")
    assert "services.s.build" in str(exc.value) and "x-lxctool" in str(exc.value)


def test_every_key_not_carried_over_is_reported_and_strict_refuses() -> None:
    _, notes = conv("services:\n  s: {image: busybox, restart: always, command: [sh], hostname: h, "
                    "mem_reservation: 10m}")
    for key in ("restart", "command", "hostname", "mem_reservation"):
        assert any(n.startswith(f"services.s.{key}:") for n in notes), key
    with pytest.raises(SpecError) as exc:
        conv("services:\n  s: {image: busybox, restart: always}", strict=True)
    assert "services.s.restart" in str(exc.value)


def test_monitor_role_drops_host_binds_and_becomes_the_stack_monitor() -> None:
    stack, notes = conv("""
services:
  influxdb: {image: influxdb}
  telegraf:
    image: telegraf
    volumes: ['/var/run/docker.sock:/var/run/docker.sock', '/proc:/host/proc:ro']
    depends_on: [influxdb]
    x-lxctool: {role: monitor, database: lxd}
""")
    assert "telegraf" not in stack["services"]
    assert stack["monitor"] == {"influxdb": "influxdb", "database": "lxd", "interval": 10}
    assert any(n.startswith("services.telegraf.volumes") for n in notes)


@pytest.mark.parametrize("text, path", [
    ("services: {s: {image: busybox, mem_limit: [1]}}", "services.s.mem_limit"),
    ("services: {s: {image: busybox, bogus_key: 1}}", "services.s"),
    ("services: {s: {image: busybox, ports: {a: 1}}}", "services.s.ports"),
    ("services: {s: {image: busybox}}\nnetworks: [a]", "networks"),
])
def test_schema_errors_name_their_path(text: str, path: str) -> None:
    with pytest.raises(SpecError) as exc:
        conv(text)
    assert any(e.startswith(f"docker-compose.yml: {path}:") for e in exc.value.errors), exc.value.errors


def test_versions_2_3_and_unversioned_are_accepted() -> None:
    for head in ('version: "2"\n', 'version: "3.8"\n', ""):
        stack, _ = conv(head + "services:\n  s: {image: busybox, mem_limit: 64m}")
        assert stack["services"]["s"]["limits"] == {"mem": "64MiB"}


def test_name_defaults_to_the_folder_and_is_lxd_safe() -> None:
    assert conv("services: {s: {image: busybox}}")[0]["name"] == "lab"
    assert conv("name: My_Wiki\nservices: {s: {image: busybox}}")[0]["name"] == "my-wiki"


def test_detection() -> None:
    assert is_compose(Path("x/docker-compose.yml"), {}) and is_compose(Path("compose.yaml"), {})
    assert is_compose(Path("stack.yaml"), {"version": "3"}) and not is_compose(Path("stack.yaml"), {})
    assert is_compose(Path("stack.yaml"), {}, force=True)


def test_convert_output_is_yaml_with_a_comment_per_key_not_carried_over() -> None:
    stack, notes = convert(yaml.safe_load("services:\n  web: {image: nginx, restart: always}"),
                           Path("/srv/lab/compose.yaml"), recipe_exists=RECIPES.__contains__)
    text = stack_yaml(stack, notes, "compose.yaml")
    assert "    # lxctool: services.web.restart: not carried over" in text
    assert yaml.safe_load(text) == stack
