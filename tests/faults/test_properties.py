"""Property-based hostile input (hypothesis) for the pure parsers: sizes, rates, CPU values,
allowances, limit files and names. Whatever the text, a parser returns a value in range or raises
its one error type with one line; it never raises anything else, never hangs, never says yes to
nan, inf or an absurd number.
"""

from __future__ import annotations

import math
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from lxctool.core import names, units
from lxctool.core.spec import option_label, parse_limits
from lxctool.core.units import UnitError

# text that looks like numbers with units as often as it looks like noise
NUMBERish = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, u: f"{n}{u}", st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                                                  st.decimals(allow_nan=True, allow_infinity=True)),
              st.sampled_from(["", "B", "MB", "GiB", "TB", "bit", "kbit", "Mbit", "Gbit", "Tbit", "iops",
                               "%", "ms/100ms", "e308", ".5", "-0-1"])),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "NaN", "Infinity", "1" + "0" * 400, "0." + "0" * 400 + "1",
                     "0-99999999999", "99999999999999999999999ms/1ms", "1ms/99999999ms", "٣MB", "１MB"]),
)
FAST = settings(max_examples=300, deadline=500)


def _one_line(exc: Exception) -> None:
    assert "\n" not in str(exc) and len(str(exc)) < 400


@FAST
@given(NUMBERish)
def test_sizes(text: str) -> None:
    try:
        value = units.parse_size(text)
    except UnitError as exc:
        _one_line(exc)
        return
    assert 0 < value <= units.INT64_MAX


@FAST
@given(st.integers(min_value=1, max_value=units.INT64_MAX))
def test_size_format_round_trips(n: int) -> None:
    assert units.parse_size(units.format_size(n)) == n


@FAST
@given(NUMBERish)
def test_rates_stay_in_what_tc_can_shape(text: str) -> None:
    try:
        value = units.parse_bit_rate(text)
    except UnitError as exc:
        _one_line(exc)
        return
    assert units.RATE_MIN_BITS <= value <= units.RATE_MAX_BITS and value % 8 == 0


@FAST
@given(NUMBERish)
def test_cpu_values(text: str) -> None:
    try:
        cpu = units.parse_cpu(text)
    except UnitError as exc:
        _one_line(exc)
        return
    if cpu.count is not None:
        assert 1 <= cpu.count <= units.CPU_NUMBER_LIMIT
    if cpu.cpuset is not None:
        assert cpu.cpuset and max(cpu.cpuset) < units.CPU_NUMBER_LIMIT
    if cpu.quota is not None:
        assert 0 < cpu.quota.cpus <= units.CPU_NUMBER_LIMIT  # type: ignore[operator]


@FAST
@given(NUMBERish)
def test_allowances(text: str) -> None:
    try:
        allowance = units.parse_allowance(text)
    except UnitError as exc:
        _one_line(exc)
        return
    if allowance.hard:
        assert 1000 <= allowance.period_us <= 1_000_000  # type: ignore[operator]
        assert 1000 <= allowance.quota_us <= allowance.period_us * 1024  # type: ignore[operator]
    else:
        assert 1 <= allowance.percent <= 100  # type: ignore[operator]


@FAST
@given(st.dictionaries(st.sampled_from(["cpu", "cpu-allowance", "mem", "memory", "swap", "processes", "disk",
                                        "disk-read", "disk-write", "net-in", "net-out", "bogus"]),
                       st.one_of(NUMBERish, st.integers(), st.floats(), st.booleans(), st.none(),
                                 st.lists(st.integers(), max_size=2))))
def test_limit_files_only_ever_give_field_named_errors(raw: dict[str, object]) -> None:
    errors: list[str] = []
    limits = parse_limits(raw, option_label, errors)
    for line in errors:
        assert line.startswith("--") and "\n" not in line
    if not errors and limits.processes is not None:
        assert 1 <= limits.processes <= units.PIDS_MAX


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.integers()))
def test_finite_number(value: object) -> None:
    try:
        number = units.finite_number(value, "--duration", 0.5, 3600)
    except UnitError as exc:
        assert str(exc).startswith("--duration: ")
        return
    assert math.isfinite(number) and 0.5 <= number <= 3600


@FAST
@given(st.text(max_size=80), st.sampled_from(sorted(names.CHECKS)))
def test_an_accepted_name_needs_no_escaping_anywhere(text: str, kind: str) -> None:
    """What a name rule accepts goes into a URL, a shell word or a file name unchanged."""
    errors = names.CHECKS[kind](text, "F")
    assert len(errors) <= 1
    if not errors:
        assert urllib.parse.quote(text, safe="") == text
        assert text not in (".", "..") and "/" not in text and text.isascii() and text.isprintable()
    else:
        assert errors[0].startswith("F: ") and "\n" not in errors[0]
