"""Sizes, rates, CPU sets and allowances: parse once into ints, format back as LXD spells them.

Sizes follow LXD: kB/MB/GB/TB are powers of 10, KiB/MiB/GiB/TiB powers of 2.
Network rates are bits per second (kbit, Mbit, Gbit); disk rates bytes per second or N iops.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

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

# The largest size or rate anything downstream holds: LXD and the kernel store them as int64.
INT64_MAX = 2**63 - 1
# tc (iproute2 6.1 on kernel 6.x here) counts rates in whole bytes per second: it refuses a rate
# below 8bit and silently rounds 100bit down to 96bit; below ~200bit/s a tbf cuts its burst under
# one frame. htb (LXD's limits.ingress) keeps a burst of >= 1000 bytes up to 4Gbit but reads back
# "burst 0b" from 8Gbit, i.e. it no longer shapes. So rates are 8kbit to 4Gbit, in whole bytes.
RATE_MIN_BITS = 8_000
RATE_MAX_BITS = 4 * 10**9
CPU_NUMBER_LIMIT = 8192  # the kernel's largest NR_CPUS
PIDS_MAX = 4_194_304  # the kernel's PID_MAX_LIMIT: pids.max above it means nothing
CFS_PERIOD_RANGE_US = (1_000, 1_000_000)  # the kernel's cpu.cfs_period_us bounds

CPU_PERIOD_US = 100_000
_NUM = r"(\d+(?:\.\d+)?)"


class UnitError(ValueError):
    """A value that is not in the expected unit syntax; the message says what is accepted."""


def parse_size(text: str | int) -> int:
    """Parse '512MB', '1GiB' or a plain byte count into a positive number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text), flags=re.ASCII)
        if not m or (m.group(2) and m.group(2) not in SIZE_UNITS):
            raise UnitError(f"{_shown(text)} is not a size; use {SIZE_ACCEPTED}")
        number, unit = m.group(1), m.group(2) or "B"
        exact = Decimal(number) * SIZE_UNITS[unit]  # Decimal: 1.1MB is exactly 1100000 bytes
        if exact != exact.to_integral_value():
            raise UnitError(f"{_shown(text)} is not a whole number of bytes; use {SIZE_ACCEPTED}")
        if exact > INT64_MAX:
            raise UnitError(f"{_shown(text)} is larger than LXD can hold (2^63-1 bytes); use {SIZE_ACCEPTED}")
        value = int(exact)
    if value <= 0:
        raise UnitError(f"{_shown(text)} must be greater than zero; use {SIZE_ACCEPTED}")
    if value > INT64_MAX:
        raise UnitError(f"{_shown(text)} is larger than LXD can hold (2^63-1 bytes); use {SIZE_ACCEPTED}")
    return value


def _shown(text: object) -> str:
    """The value as the user gave it, cut short: a 10,000-digit number makes a one-line error too."""
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def finite_number(value: object, field: str, low: float, high: float, *, integer: bool = False) -> float:
    """A real number in [low, high] (nan, inf and 1e308 refused); UnitError naming the field otherwise."""
    what = f"a {'whole ' if integer else ''}number from {low:g} to {high:g}"
    if isinstance(value, bool):
        raise UnitError(f"{field}: {value!r} is not a number; use {what}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise UnitError(f"{field}: {_shown(value)} is not a number; use {what}") from None
    if not math.isfinite(number) or not low <= number <= high or (integer and number != int(number)):
        raise UnitError(f"{field}: {_shown(value)} is out of range; use {what}")
    return number


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
    """Parse a network rate like '10Mbit' into bits per second (8kbit to 4Gbit, whole bytes: tc's range)."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", str(text), flags=re.ASCII)
    if not m or m.group(2) not in RATE_UNITS:
        raise UnitError(f"{_shown(text)} is not a network rate; use {RATE_ACCEPTED}")
    exact = Decimal(m.group(1)) * RATE_UNITS[m.group(2)]
    if exact <= 0 or exact != exact.to_integral_value():
        raise UnitError(f"{_shown(text)} must be a positive whole number of bits; use {RATE_ACCEPTED}")
    if not RATE_MIN_BITS <= exact <= RATE_MAX_BITS:
        raise UnitError(f"{_shown(text)} is outside what tc can shape here: use 8kbit to 4Gbit (tc counts "
                        "whole bytes per second and refuses under 8bit; htb stops shaping from 8Gbit)")
    if exact % 8:
        raise UnitError(f"{_shown(text)} is not a whole number of bytes per second, which tc would round "
                        f"down silently; use a multiple of 8bit such as {int(exact) // 8 * 8}bit")
    return int(exact)


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
    m = re.fullmatch(r"(\d+)\s*iops", s, flags=re.ASCII)
    if m:
        if not 0 < int(m.group(1)) <= INT64_MAX:
            raise UnitError(f"{_shown(text)} must be greater than zero; use {DISK_RATE_ACCEPTED}")
        return DiskRate(int(m.group(1)), iops=True)
    try:
        return DiskRate(parse_size(s))
    except UnitError:
        raise UnitError(f"{_shown(text)} is not a disk rate; use {DISK_RATE_ACCEPTED}") from None


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
            raise UnitError(f"{_shown(text)} is out of range; use {ALLOWANCE_ACCEPTED}")
        return Allowance(percent=pct)
    m = re.fullmatch(_NUM + r"ms/" + _NUM + r"ms", s)
    if m:
        quota, period = round(Decimal(m.group(1)) * 1000), round(Decimal(m.group(2)) * 1000)
        if quota < 1000 or period < 1000:
            raise UnitError(f"{_shown(text)}: quota and period must be at least 1ms; use {ALLOWANCE_ACCEPTED}")
        lo, hi = CFS_PERIOD_RANGE_US
        if not lo <= period <= hi:
            raise UnitError(f"{_shown(text)}: the period must be 1ms to 1000ms (the kernel's CFS period "
                            f"range); use {ALLOWANCE_ACCEPTED}")
        if quota > period * 1024:
            raise UnitError(f"{_shown(text)}: a quota of over 1024 periods is no limit; use {ALLOWANCE_ACCEPTED}")
        return Allowance(quota_us=quota, period_us=period)
    raise UnitError(f"{_shown(text)} is not a CPU allowance; use {ALLOWANCE_ACCEPTED}")


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
        m = re.fullmatch(r"\s*(\d{1,9})(?:-(\d{1,9}))?\s*", part, flags=re.ASCII)
        if not m:
            raise UnitError(f"{_shown(text)} is not a CPU set; use {CPU_ACCEPTED}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi >= CPU_NUMBER_LIMIT:  # checked before range(): '0-99999999999' must not fill memory
            raise UnitError(f"{_shown(text)}: CPU {hi} is beyond any host (at most {CPU_NUMBER_LIMIT - 1}); "
                            f"use {CPU_ACCEPTED}")
        if hi < lo:
            raise UnitError(f"{_shown(text)}: range {part.strip()} runs backwards; use {CPU_ACCEPTED}")
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
    if re.fullmatch(r"-?\d+", s, flags=re.ASCII):
        n = int(s) if len(s) < 12 else CPU_NUMBER_LIMIT + 1
        if n > CPU_NUMBER_LIMIT:
            raise UnitError(f"{_shown(text)} is more CPUs than any host has; use {CPU_ACCEPTED}")
        if n < 1:
            raise UnitError(f"{_shown(text)} must be at least 1; use {CPU_ACCEPTED}")
        return CpuSpec(count=n)
    if re.fullmatch(r"-?\d*\.\d+", s, flags=re.ASCII):
        cpus = Decimal(s)  # not float: a 400-digit value would be inf and overflow round()
        if cpus <= 0:
            raise UnitError(f"{_shown(text)} must be greater than zero; use {CPU_ACCEPTED}")
        quota = round(cpus * CPU_PERIOD_US)
        if quota < 1000:
            raise UnitError(f"{_shown(text)} is below 0.01 CPU; use {CPU_ACCEPTED}")
        if cpus > CPU_NUMBER_LIMIT:
            raise UnitError(f"{_shown(text)} is more CPUs than any host has; use {CPU_ACCEPTED}")
        return CpuSpec(quota=Allowance(quota_us=quota, period_us=CPU_PERIOD_US))
    if re.fullmatch(r"[\d,\- ]+", s) and ("-" in s or "," in s):
        return CpuSpec(cpuset=parse_cpuset(s))
    raise UnitError(f"{_shown(text)} is not a CPU value; use {CPU_ACCEPTED}")
