"""Compose's own spellings of sizes, durations and CPU values, turned into lxctool's. Pure."""

from __future__ import annotations

import math
import re

from lxctool.core.units import UnitError

# docker's byte units are powers of 2 whatever their case: 512m = 512 MiB (docker/go-units RAMInBytes)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
               "g": 1024 ** 3, "gb": 1024 ** 3, "t": 1024 ** 4, "tb": 1024 ** 4}
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def compose_bytes(value: object) -> int:
    """A compose memory value (536870912, '512m', '1.5g', '100kb') in bytes."""
    if isinstance(value, bool):
        raise UnitError(f"{value!r} is not a size; use bytes or a number with b, k, m or g")
    if isinstance(value, int):
        if value < 1:
            raise UnitError(f"{value!r} must be at least 1 byte")
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise UnitError(f"{value!r} is not a size; use bytes or a number with b, k, m or g (powers of 1024)")
    n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    if n < 1:
        raise UnitError(f"{value!r} must be at least 1 byte")
    return n


def compose_seconds(value: object) -> float:
    """A compose duration ('1m30s', '10s', '500ms', 30) in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise UnitError(f"{value!r} is not a duration; use e.g. 30s, 1m30s, 500ms")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise UnitError(f"{value!r} is not a duration; use e.g. 30s, 1m30s, 500ms")
    return seconds


def compose_cpus(value: object) -> str:
    """compose `cpus` (a hard quota in CPUs, as docker --cpus) -> lxctool's cpu-allowance Xms/100ms."""
    try:
        cpus = float(str(value))
    except ValueError:
        raise UnitError(f"{value!r} is not a number of CPUs; use e.g. 0.5 or 2") from None
    if not math.isfinite(cpus) or cpus <= 0 or cpus > 1024:
        raise UnitError(f"{value!r} is not a number of CPUs; use a number above 0, e.g. 0.5 or 2")
    return f"{round(cpus * 100, 3):g}ms/100ms"


def compose_cpuset(value: object) -> str:
    """compose `cpuset` ('0-1', '0,2', '1') -> lxctool's pinned set ('1' alone is a count there: '1-1')."""
    text = str(value).strip()
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise UnitError(f"{value!r} is not a CPU set; use e.g. 0-1 or 0,2")
    return f"{text}-{text}" if text.isdigit() else text


def compose_shares(value: object) -> str:
    """compose `cpu_shares` S (1024 = one full share) -> the soft share S/1024 x 100%."""
    try:
        shares = int(str(value))
    except ValueError:
        raise UnitError(f"{value!r} is not a whole number of CPU shares; use e.g. 512 or 1024") from None
    if shares < 2:
        raise UnitError(f"{value!r}: cpu_shares must be at least 2 (docker's minimum)")
    return f"{round(shares / 1024 * 100, 2):g}%"
