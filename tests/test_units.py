"""Pure tests of unit parsing and --cpu semantics (no daemon, no fakes)."""

from __future__ import annotations

import pytest

from lxctool.core import units
from lxctool.core.units import UnitError


@pytest.mark.parametrize("text,expected", [
    ("512MB", 512_000_000), ("512MiB", 512 * 2**20), ("1GB", 10**9), ("1GiB", 2**30),
    ("300MB", 300_000_000), ("4096", 4096), ("4096B", 4096), ("1.5GB", 1_500_000_000),
    ("10kB", 10_000), ("10KiB", 10_240),
])
def test_parse_size(text: str, expected: int) -> None:
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["512XB", "-5MB", "0MB", "MB", "", "1.5B", "12 parsecs", "5mb"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_size(text)
    assert "MB" in str(exc.value)  # says what is accepted


@pytest.mark.parametrize("value,spelled", [
    (512_000_000, "512MB"), (512 * 2**20, "512MiB"), (4096, "4KiB"), (1234, "1234B"), (10**9, "1GB"),
])
def test_format_size_round_trips(value: int, spelled: str) -> None:
    assert units.format_size(value) == spelled
    assert units.parse_size(spelled) == value


def test_bit_rates() -> None:
    assert units.parse_bit_rate("10Mbit") == 10_000_000
    assert units.parse_bit_rate("1.5Gbit") == 1_500_000_000
    assert units.format_bit_rate(10_000_000) == "10Mbit"
    for bad in ("10MB", "10", "-1Mbit", "fast"):
        with pytest.raises(UnitError, match="bit"):
            units.parse_bit_rate(bad)


def test_disk_rates() -> None:
    assert units.parse_disk_rate("10MB") == units.DiskRate(10_000_000)
    assert units.parse_disk_rate("100iops") == units.DiskRate(100, iops=True)
    assert units.parse_disk_rate("100iops").lxd() == "100iops"
    assert units.parse_disk_rate("10MB").lxd() == "10MB"
    for bad in ("0iops", "10Mbit", "fast"):
        with pytest.raises(UnitError):
            units.parse_disk_rate(bad)


def test_allowance() -> None:
    soft = units.parse_allowance("25%")
    assert not soft.hard and soft.lxd() == "25%"
    hard = units.parse_allowance("25ms/100ms")
    assert hard.hard and (hard.quota_us, hard.period_us) == (25_000, 100_000) and hard.cpus == 0.25
    assert hard.lxd() == "25ms/100ms"
    for bad in ("0%", "101%", "25", "25ms", "0ms/100ms", "x%"):
        with pytest.raises(UnitError):
            units.parse_allowance(bad)


@pytest.mark.parametrize("text,count,cpuset,quota", [
    ("1", 1, None, None),
    ("2", 2, None, None),
    ("0-1", None, (0, 1), None),
    ("0,2", None, (0, 2), None),
    ("1-1", None, (1,), None),
    ("0.5", None, None, (50_000, 100_000)),
    ("1.5", None, None, (150_000, 100_000)),
    (".25", None, None, (25_000, 100_000)),
])
def test_cpu_semantics(text: str, count: int | None, cpuset: tuple[int, ...] | None,
                       quota: tuple[int, int] | None) -> None:
    spec = units.parse_cpu(text)
    assert spec.count == count
    assert spec.cpuset == cpuset
    assert (None if spec.quota is None else (spec.quota.quota_us, spec.quota.period_us)) == quota


def test_cpu_lxd_spelling() -> None:
    assert units.parse_cpu("1-1").lxd_cpu() == "1-1"  # a single pinned CPU, not a count of one
    assert units.parse_cpu("0,2").lxd_cpu() == "0,2"
    assert units.parse_cpu("0-1").lxd_cpu() == "0-1"
    assert units.parse_cpu("2").lxd_cpu() == "2"
    assert units.parse_cpu("0.5").lxd_cpu() is None
    assert units.parse_cpu("0.5").quota.lxd() == "50ms/100ms"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["0", "-1", "0.0", "-0.5", "1-0", "a", "0.001", "1..2"])
def test_cpu_rejects(bad: str) -> None:
    with pytest.raises(UnitError) as exc:
        units.parse_cpu(bad)
    assert "CPU" in str(exc.value)


def test_human_size() -> None:
    assert units.human_size(299_999_232) == "300.0MB"
    assert units.human_size(None) == "-"


def test_tc_rates() -> None:
    from lxctool.host.tc import parse_tc_rate

    assert parse_tc_rate("10Mbit") == 10_000_000
    assert parse_tc_rate("500Kbit") == 500_000
    assert parse_tc_rate("9600bit") == 9600
    assert parse_tc_rate("1.5Gbit") == 1_500_000_000
    assert parse_tc_rate("fast") is None


def test_cpu_count_of_a_limit_and_cpuset_match() -> None:
    from lxctool.apply.launch import cpuset_matches

    assert units.parse_cpu("2").cpu_count == 2
    assert units.parse_cpu("0,2").cpu_count == 2
    assert units.parse_cpu("1-1").cpu_count == 1
    assert units.parse_cpu("0.5").cpu_count is None
    assert cpuset_matches("1", "1") and cpuset_matches("0", "1") and not cpuset_matches("0-1", "1")
    assert cpuset_matches("1", "1-1") and not cpuset_matches("0", "1-1")
    assert cpuset_matches("0,2", "0,2") and not cpuset_matches(None, "1")
