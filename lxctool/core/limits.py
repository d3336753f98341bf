"""Limits -> LXD instance config keys and device keys, as one table; and back for display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from lxctool.core import units
from lxctool.core.spec import Limits

ROOT_DEVICE = "root"
NIC_DEVICE = "eth0"
HOST_EGRESS_KEY = "user.lxctool.net-out"  # bits/s that netshape.py shapes on the host


@dataclass(frozen=True)
class KeyRule:
    """One limit field and where LXD keeps it (device None = an instance config key)."""

    field: str
    key: str
    to_lxd: Callable[[Any], str | None]
    device: str | None = None


def _cpu(v: units.CpuSpec) -> str | None:
    return v.lxd_cpu()


def _cpu_quota(v: units.CpuSpec) -> str | None:
    return v.quota.lxd() if v.quota is not None else None


RULES: tuple[KeyRule, ...] = (
    KeyRule("cpu", "limits.cpu", _cpu),
    KeyRule("cpu", "limits.cpu.allowance", _cpu_quota),
    KeyRule("cpu_allowance", "limits.cpu.allowance", lambda v: v.lxd()),
    KeyRule("memory", "limits.memory", units.format_size),
    KeyRule("swap", "limits.memory.swap", lambda v: "true" if v else "false"),
    KeyRule("processes", "limits.processes", str),
    KeyRule("disk", "size", units.format_size, ROOT_DEVICE),
    KeyRule("disk_read", "limits.read", lambda v: v.lxd(), ROOT_DEVICE),
    KeyRule("disk_write", "limits.write", lambda v: v.lxd(), ROOT_DEVICE),
    KeyRule("net_in", "limits.ingress", units.format_bit_rate, NIC_DEVICE),
    KeyRule("net_out", "limits.egress", units.format_bit_rate, NIC_DEVICE),
)


def limits_to_lxd(limits: Limits) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Return (instance config keys, {device name: device keys}) for the limits that are set."""
    config: dict[str, str] = {}
    devices: dict[str, dict[str, str]] = {}
    for rule in RULES:
        value = getattr(limits, rule.field)
        if value is None:
            continue
        lxd_value = rule.to_lxd(value)
        if lxd_value is None:
            continue
        if rule.device is None:
            config[rule.key] = lxd_value
        else:
            devices.setdefault(rule.device, {})[rule.key] = lxd_value
    return config, devices


LIMIT_CONFIG_KEYS = tuple(sorted({r.key for r in RULES if r.device is None}))
DEVICE_LIMIT_KEYS = {dev: tuple(r.key for r in RULES if r.device == dev) for dev in (ROOT_DEVICE, NIC_DEVICE)}


def configured_limits(config: Mapping[str, str], devices: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The limit keys an instance has (expanded config/devices), as 'key' or 'device.key' -> value.

    Egress that lxctool shapes on the host (no tc police for LXD's limits.egress) is reported
    as eth0.limits.egress too, marked host-side.
    """
    out = {k: config[k] for k in LIMIT_CONFIG_KEYS if config.get(k)}
    for dev_name, keys in DEVICE_LIMIT_KEYS.items():
        dev = devices.get(dev_name, {})
        for k in keys:
            if dev.get(k):
                out[f"{dev_name}.{k}"] = dev[k]
    shaped = config.get(HOST_EGRESS_KEY)
    if shaped and f"{NIC_DEVICE}.limits.egress" not in out:
        out[f"{NIC_DEVICE}.limits.egress"] = f"{units.format_bit_rate(int(shaped))} (host-side)"
    return out


def summary(config: Mapping[str, str], devices: Mapping[str, Mapping[str, str]]) -> str:
    """One short line of the configured limits, for tables."""
    short = {
        "limits.cpu": "cpu", "limits.cpu.allowance": "allowance", "limits.memory": "mem",
        "limits.memory.swap": "swap", "limits.processes": "procs", "root.size": "disk",
        "root.limits.read": "rd", "root.limits.write": "wr", "eth0.limits.ingress": "in",
        "eth0.limits.egress": "out",
    }
    return " ".join(f"{short.get(k, k)}={v}" for k, v in configured_limits(config, devices).items())
