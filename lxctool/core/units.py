"""Sizes, rates, CPU sets and allowances: parse once into ints, format back as LXD spells them.

Sizes follow LXD: kB/MB/GB/TB are powers of 10, KiB/MiB/GiB/TiB powers of 2.
Network rates are bits per second (kbit, Mbit, Gbit); disk rates bytes per second or N iops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}
SIZE_ACCEPTED = "a whole number with B, kB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. 512MB)"

RATE_UNITS: dict[str, int] = {
    "bit": 1, "kbit": 10**3, "Mbit": 10**6, "Gbit": 10**9, "Tbit": 10**12,
}
RATE_ACCEPTED = "bits per second as N with bit, kbit, Mbit or Gbit (e.g. 10Mbit)"
DISK_RATE_ACCEPTED = "bytes per second with a size unit (e.g. 10MB) or an operation rate like 100iops"

CPU_PERIOD_US = 100_000
_NUM = r"(\d+(?:\.\d+)?)"


class UnitError(ValueError):
    """A value that is not in the expected unit syntax; the message says what is accepted."""


def parse_size(text: str | int) -> int:
    """Parse '512MB', '1GiB' or a plain byte count into a positive number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        if not m or (m.group(2) and m.group(2) not in SIZE_UNITS):
            raise UnitError(f"{text!r} is not a size; use {SIZE_ACCEPTED}")
        number, unit = m.group(1), m.group(2) or "B"
        value_f = float(number) * SIZE_UNITS[unit]
        if value_f != int(value_f):
            raise UnitError(f"{text!r} is not a whole number of bytes; use {SIZE_ACCEPTED}")
        value = int(value_f)
    if value <= 0:
        raise UnitError(f"{text!r} must be greater than zero; use {SIZE_ACCEPTED}")
    return value


def _format_exact(value: int, units: dict[str, int], base_unit: str) -> str:
    """Format value with the largest unit that divides it exactly."""
    best = f"{value}{base_unit}"
    best_div = 1
    for unit, factor in units.items():
        if unit == "KB":
            continue
        if factor > best_div and value % factor == 0:
            best, best_div = f"{value // factor}{unit}", factor
    return best


def format_size(value: int) -> str:
    """Format bytes as LXD spells them, exactly: 512000000 -> '512MB', 2**29 -> '512MiB'."""
    return _format_exact(value, SIZE_UNITS, "B")


def human_size(value: int | None) -> str:
    """Round a byte count for people: 299999232 -> '300.0MB'."""
    if value is None:
        return "-"
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{unit}"
    return f"{value}B"


def parse_bit_rate(text: str) -> int:
    """Parse a network rate like '10Mbit' into bits per second."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", str(text))
    if not m or m.group(2) not in RATE_UNITS:
        raise UnitError(f"{text!r} is not a network rate; use {RATE_ACCEPTED}")
    value_f = float(m.group(1)) * RATE_UNITS[m.group(2)]
    if value_f <= 0 or value_f != int(value_f):
        raise UnitError(f"{text!r} must be a positive whole number of bits; use {RATE_ACCEPTED}")
    return int(value_f)


def format_bit_rate(value: int) -> str:
    """Format bits per second as LXD spells them: 10000000 -> '10Mbit'."""
    return _format_exact(value, RATE_UNITS, "bit")


@dataclass(frozen=True)
class DiskRate:
    """A disk throughput limit: bytes per second, or I/O operations per second."""

    value: int
    iops: bool = False

    def lxd(self) -> str:
        """LXD's spelling of this rate."""
        return f"{self.value}iops" if self.iops else format_size(self.value)


def parse_disk_rate(text: str) -> DiskRate:
    """Parse '10MB' (bytes/s) or '100iops'."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d+)\s*iops", s)
    if m:
        if int(m.group(1)) <= 0:
            raise UnitError(f"{text!r} must be greater than zero; use {DISK_RATE_ACCEPTED}")
        return DiskRate(int(m.group(1)), iops=True)
    try:
        return DiskRate(parse_size(s))
    except UnitError:
        raise UnitError(f"{text!r} is not a disk rate; use {DISK_RATE_ACCEPTED}") from None


@dataclass(frozen=True)
class Allowance:
    """limits.cpu.allowance: a soft share in percent, or a hard CFS quota per period."""

    percent: int | None = None
    quota_us: int | None = None
    period_us: int | None = None

    @property
    def hard(self) -> bool:
        """True for 'Xms/Yms', which the kernel enforces as a CFS quota."""
        return self.quota_us is not None

    @property
    def cpus(self) -> float | None:
        """The hard quota in CPUs (quota / period), None for a soft share."""
        return self.quota_us / self.period_us if self.hard else None  # type: ignore[operator]

    def lxd(self) -> str:
        """LXD's spelling."""
        if self.hard:
            return f"{_us_to_ms(self.quota_us)}ms/{_us_to_ms(self.period_us)}ms"
        return f"{self.percent}%"


def _us_to_ms(us: int | None) -> str:
    assert us is not None
    return str(us // 1000) if us % 1000 == 0 else f"{us / 1000:g}"


ALLOWANCE_ACCEPTED = "N% (a soft share, 1-100) or Xms/Yms (a hard quota, e.g. 50ms/100ms)"


def parse_allowance(text: str) -> Allowance:
    """Parse '25%' (soft share) or '25ms/100ms' (hard quota)."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d+)%", s)
    if m:
        pct = int(m.group(1))
        if not 1 <= pct <= 100:
            raise UnitError(f"{text!r} is out of range; use {ALLOWANCE_ACCEPTED}")
        return Allowance(percent=pct)
    m = re.fullmatch(_NUM + r"ms/" + _NUM + r"ms", s)
    if m:
        quota, period = round(float(m.group(1)) * 1000), round(float(m.group(2)) * 1000)
        if quota < 1000 or period < 1000:
            raise UnitError(f"{text!r}: quota and period must be at least 1ms; use {ALLOWANCE_ACCEPTED}")
        return Allowance(quota_us=quota, period_us=period)
    raise UnitError(f"{text!r} is not a CPU allowance; use {ALLOWANCE_ACCEPTED}")


@dataclass(frozen=True)
class CpuSpec:
    """What --cpu meant: a count of CPUs, a pinned set, or a hard quota in CPUs."""

    count: int | None = None
    cpuset: tuple[int, ...] | None = None
    quota: Allowance | None = None

    @property
    def cpu_count(self) -> int | None:
        """How many CPUs a count or a pinned set gives (None for a quota)."""
        if self.count is not None:
            return self.count
        return len(self.cpuset) if self.cpuset is not None else None

    def lxd_cpu(self) -> str | None:
        """Value for limits.cpu (None when --cpu was a fractional quota)."""
        if self.count is not None:
            return str(self.count)
        if self.cpuset is not None:
            return format_cpuset(self.cpuset)
        return None


CPU_ACCEPTED = ("a CPU count (1, 2), a CPU set to pin (0-1, 0,2, 1-1) "
                "or a fraction of CPUs as a hard quota (0.5, 1.5)")


def parse_cpuset(text: str) -> tuple[int, ...]:
    """Parse a cpuset list like '0-1,3' into sorted CPU numbers."""
    cpus: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not m:
            raise UnitError(f"{text!r} is not a CPU set; use {CPU_ACCEPTED}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UnitError(f"{text!r}: range {part.strip()} runs backwards; use {CPU_ACCEPTED}")
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus))


def format_cpuset(cpus: tuple[int, ...] | list[int]) -> str:
    """Format CPU numbers compactly: (0, 1, 3) -> '0-1,3'; a single CPU pins as 'N-N'."""
    cpus = sorted(cpus)
    if len(cpus) == 1:
        return f"{cpus[0]}-{cpus[0]}"
    parts, start, prev = [], cpus[0], cpus[0]
    for c in cpus[1:] + [None]:  # type: ignore[list-item]
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)


def parse_cpu(text: str | int) -> CpuSpec:
    """Parse --cpu: 'N' count, '0-1'/'0,2' pinned set, '0.5' hard quota in CPUs (docker --cpus)."""
    s = str(text).strip()
    if re.fullmatch(r"-?\d+", s):
        n = int(s)
        if n < 1:
            raise UnitError(f"{text!r} must be at least 1; use {CPU_ACCEPTED}")
        return CpuSpec(count=n)
    if re.fullmatch(r"-?\d*\.\d+", s):
        cpus = float(s)
        if cpus <= 0:
            raise UnitError(f"{text!r} must be greater than zero; use {CPU_ACCEPTED}")
        quota = round(cpus * CPU_PERIOD_US)
        if quota < 1000:
            raise UnitError(f"{text!r} is below 0.01 CPU; use {CPU_ACCEPTED}")
        return CpuSpec(quota=Allowance(quota_us=quota, period_us=CPU_PERIOD_US))
    if re.fullmatch(r"[\d,\- ]+", s) and ("-" in s or "," in s):
        return CpuSpec(cpuset=parse_cpuset(s))
    raise UnitError(f"{text!r} is not a CPU value; use {CPU_ACCEPTED}")
