"""Pure tests: option values -> Limits (every error, each with its field) -> LXD keys."""

from __future__ import annotations

from lxctool.core import limits as limitmap
from lxctool.core.spec import check_limits_for_host, check_name, option_label, parse_limits


def parse(**raw: object) -> tuple[object, list[str]]:
    errors: list[str] = []
    lim = parse_limits({k.replace("_", "-"): v for k, v in raw.items()}, option_label, errors)
    return lim, errors


def test_every_error_is_collected_with_its_field() -> None:
    _, errors = parse(mem="512XB", cpu="0", processes="0", net_in="10MB")
    joined = "\n".join(errors)
    assert len(errors) == 4
    assert "--mem: '512XB' is not a size" in joined
    assert "--cpu: '0' must be at least 1" in joined
    assert "--processes: '0' must be at least 1" in joined
    assert "--net-in:" in joined


def test_fractional_cpu_with_allowance_is_ambiguous() -> None:
    _, errors = parse(cpu="0.5", cpu_allowance="20ms/100ms")
    assert len(errors) == 1 and "--cpu" in errors[0] and "--cpu-allowance" in errors[0]
    _, errors = parse(cpu="1", cpu_allowance="20ms/100ms")
    assert errors == []


def test_host_cpu_checks() -> None:
    for raw, field in ((dict(cpu="99"), "--cpu"), (dict(cpu="0-7"), "--cpu"),
                       (dict(cpu_allowance="300ms/100ms"), "--cpu-allowance"), (dict(cpu="2.5"), "--cpu")):
        lim, errors = parse(**raw)
        assert errors == []
        host_errors = check_limits_for_host(lim, 2, option_label)  # type: ignore[arg-type]
        assert len(host_errors) == 1 and host_errors[0].startswith(field + ":"), host_errors
    lim, _ = parse(cpu="0-1", cpu_allowance="200ms/100ms")
    assert check_limits_for_host(lim, 2, option_label) == []  # type: ignore[arg-type]


def test_names() -> None:
    assert check_name("web1") == []
    assert check_name("web-1") == []
    for bad in ("web_1", "1web", "-web", "web-", "a" * 64, ""):
        errors = check_name(bad)
        assert len(errors) == 1 and "NAME:" in errors[0]
    assert check_name("a" * 63) == []


def test_limits_to_lxd_table() -> None:
    lim, errors = parse(cpu="0.5", mem="300MB", swap=False, processes="50", disk="1GB",
                        disk_read="10MB", disk_write="100iops", net_in="10Mbit", net_out="20Mbit")
    assert errors == []
    config, devices = limitmap.limits_to_lxd(lim)  # type: ignore[arg-type]
    assert config == {"limits.cpu.allowance": "50ms/100ms", "limits.memory": "300MB",
                      "limits.memory.swap": "false", "limits.processes": "50"}
    assert devices == {"root": {"size": "1GB", "limits.read": "10MB", "limits.write": "100iops"},
                       "eth0": {"limits.ingress": "10Mbit", "limits.egress": "20Mbit"}}


def test_cpu_count_and_pinning_keys() -> None:
    for value, key in (("1", "1"), ("1-1", "1-1"), ("0,1", "0-1")):
        lim, _ = parse(cpu=value)
        config, _ = limitmap.limits_to_lxd(lim)  # type: ignore[arg-type]
        assert config == {"limits.cpu": key}
    lim, _ = parse(cpu_allowance="25%")
    assert limitmap.limits_to_lxd(lim)[0] == {"limits.cpu.allowance": "25%"}  # type: ignore[arg-type]


def test_configured_limits_reads_back_expanded_keys() -> None:
    config = {"limits.memory": "512MB", "limits.cpu": "1", "user.x": "y"}
    devices = {"root": {"type": "disk", "path": "/", "pool": "p", "limits.read": "10MB"},
               "eth0": {"type": "nic", "limits.ingress": "10Mbit"}}
    assert limitmap.configured_limits(config, devices) == {
        "limits.cpu": "1", "limits.memory": "512MB", "root.limits.read": "10MB",
        "eth0.limits.ingress": "10Mbit"}
    assert limitmap.summary(config, devices) == "cpu=1 mem=512MB rd=10MB in=10Mbit"


def test_launch_reads_the_readiness_property_the_builder_writes() -> None:
    from lxctool.images.build import READINESS_PROPERTY
    from lxctool.apply.launch import READINESS_CONFIG_KEY

    assert READINESS_CONFIG_KEY == f"image.{READINESS_PROPERTY}"


def test_host_side_egress_reads_back_as_the_nic_egress_limit() -> None:
    config = {"user.lxctool.net-out": "10000000", "limits.memory": "64MB"}
    assert limitmap.configured_limits(config, {}) == {
        "limits.memory": "64MB", "eth0.limits.egress": "10Mbit (host-side)"}
    # LXD's own limits.egress, where it works, is what is reported
    assert limitmap.configured_limits(config, {"eth0": {"limits.egress": "20Mbit"}})[
        "eth0.limits.egress"] == "20Mbit"
