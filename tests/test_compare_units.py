"""Pure tests of compare's arithmetic, export formats, option and URL checks (no daemon, no fakes)."""

from __future__ import annotations

import pytest

from lxctool.observe.compare import container_row, explain, host_row, positive
from lxctool.core.errors import SpecError
from lxctool.report.export import influx_lines, prometheus_text
from lxctool.observe.measure import ContainerSample, HostSample
from lxctool.observe.monitor import check_database, parse_url


def host(t: float, busy: float, rx: int = 0, by: dict[str, int] | None = None) -> HostSample:
    return HostSample(time=t, wall=1_800_000_000.0 + t, cpus=2, cpu_busy_s=busy, load1=0.5, processes=120,
                      threads=150, kernel_threads=70, lxd_processes=4, by_container=by or {"a": 3},
                      threads_by_container={"a": 5}, memory_used=10**9, memory_cache=5 * 10**8, memory_total=4 * 10**9,
                      swap_used=0, swap_total=0, disk_used=10**10, disk_total=10**11,
                      net={"eth0": (rx, 0)}, ipv4=["192.0.2.2"])


def ctr(t: float, cpu_s: float, **kw: object) -> ContainerSample:
    base = dict(name="a", state="RUNNING", time=t, processes=3, tasks=5, threads=5, cpu_ns=int(cpu_s * 1e9),
                cpu_limit_cpus=0.5, cpu_limit_kind="quota", memory=2 * 10**8, memory_limit=256 * 10**6,
                net={"eth0": (0, 0)})
    base.update(kw)
    return ContainerSample(**base)  # type: ignore[arg-type]


def test_host_cpu_percent_is_busy_time_over_wall_time() -> None:
    row = host_row(host(10.0, 100.0, rx=0), host(12.0, 103.0, rx=4000))
    assert row["cpu_percent"] == 150.0          # 3 CPU-seconds in 2 s = 1.5 CPUs
    assert row["cpu_percent_of_limit"] == 75.0  # of 2 CPUs
    assert row["net_rx_bytes_per_s"] == 2000.0
    assert row["processes_in_containers"] == 3 and row["processes_host_only"] == 117


def test_container_cpu_percent_of_one_cpu_and_of_its_quota() -> None:
    h = host(12.0, 0)
    row = container_row(ctr(10.0, 5.0), ctr(12.0, 6.0, net={"eth0": (1000, 500)}), h)
    assert row["cpu_percent"] == 50.0
    assert row["cpu_percent_of_limit"] == 100.0
    assert row["net_rx_bytes_per_s"] == 500.0 and row["net_tx_bytes_per_s"] == 250.0


def test_unlimited_cpu_has_null_percent_of_limit_and_first_sample_no_rate() -> None:
    h = host(12.0, 0)
    row = container_row(ctr(10.0, 5.0, cpu_limit_cpus=None, cpu_limit_kind=None), ctr(12.0, 6.0, cpu_limit_cpus=None), h)
    assert row["cpu_percent"] == 50.0 and row["cpu_percent_of_limit"] is None
    assert container_row(None, ctr(12.0, 6.0), h)["cpu_percent"] is None


def test_explain_names_threads_soft_shares_and_page_cache() -> None:
    a, b = host(10.0, 0), host(12.0, 1.0)
    rows = [host_row(a, b),
            container_row(ctr(10.0, 1.0), ctr(12.0, 2.0), b),
            container_row(ctr(10.0, 1.0, name="s"), ctr(12.0, 1.5, name="s", cpu_limit_cpus=None,
                                                        cpu_limit_kind=None, allowance="50%", cpu_shares=512,
                                                        tasks=3), b)]
    text = "\n".join(explain(rows))
    assert "3 processes but its pids cgroup counts 5 tasks" in text
    assert "soft share (cpu.shares=512)" in text
    assert "hard CFS quota of 0.5 CPU" in text and "100.0% of its limit" in text
    assert "page cache" in text and "the host sees 120" in text


def test_influx_line_is_exact() -> None:
    rows = [{"time": "1970-01-01T00:00:10.000+00:00", "kind": "container", "name": "my box,1", "processes": 3,
             "cpu_percent": 12.5, "memory_limit_bytes": None, "ipv4": ["10.0.0.2"]}]
    assert influx_lines(rows) == ["lxctool,kind=container,name=my\\ box\\,1 processes=3i,cpu_percent=12.5 10000000000"]


def test_prometheus_text_has_help_type_and_labels() -> None:
    rows = [{"time": "1970-01-01T00:00:10.000+00:00", "kind": "host", "name": "host", "processes": 120,
             "cpu_percent": 33.5, "cpu_seconds_total": 700.25, "net_rx_bytes_total": 5000,
             "net_rx_bytes_per_s": 10.0, "disk_total_bytes": 10**11},
            {"time": "1970-01-01T00:00:10.000+00:00", "kind": "container", "name": 'we"b', "processes": 4,
             "cpu_percent": None, "cpu_seconds_total": None}]
    text = prometheus_text(rows).splitlines()
    assert "# TYPE lxctool_processes gauge" in text
    assert 'lxctool_processes{kind="host",name="host"} 120' in text
    assert 'lxctool_processes{kind="container",name="we\\"b"} 4' in text
    assert "# TYPE lxctool_cpu_seconds_total counter" in text
    assert 'lxctool_cpu_seconds_total{kind="host",name="host"} 700.25' in text
    assert 'lxctool_network_receive_bytes_total{kind="host",name="host"} 5000' in text
    assert 'lxctool_disk_size_bytes{kind="host",name="host"} 100000000000' in text
    # Prometheus computes rates itself: no pre-computed percentages or per-second figures
    assert not any("percent" in line or "per_s" in line for line in text)
    assert not any(line.startswith('lxctool_cpu_seconds_total{kind="container"') for line in text)


def test_rows_carry_counters_for_prometheus() -> None:
    a, b = host(10.0, 100.0, rx=1000), host(12.0, 103.0, rx=4000)
    assert host_row(a, b)["cpu_seconds_total"] == 103.0 and host_row(a, b)["net_rx_bytes_total"] == 4000
    row = container_row(ctr(10.0, 5.0), ctr(12.0, 6.5, net={"eth0": (1000, 500)}), b)
    assert row["cpu_seconds_total"] == 6.5
    assert row["net_rx_bytes_total"] == 1000 and row["net_tx_bytes_total"] == 500


@pytest.mark.parametrize("value,kind,ok", [("1", float, 1.0), ("0.25", float, 0.25), ("3", int, 3),
                                           ("0", float, None), ("-1", float, None), ("nan", float, None),
                                           ("x", float, None), ("1.5", int, None), ("0", int, None)])
def test_positive_numbers(value: str, kind: type, ok: object) -> None:
    if ok is None:
        with pytest.raises(SpecError) as exc:
            positive(value, "--interval", kind)
        assert exc.value.errors[0].startswith("--interval: ")
    else:
        assert positive(value, "--interval", kind) == ok


@pytest.mark.parametrize("url", ["http://127.0.0.1:8086", "https://influx.example:8086/", "http://[::1]:8086"])
def test_good_influx_urls(url: str) -> None:
    assert parse_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["127.0.0.1:8086", "ftp://x", "http://", "http://h:99999", "http://h:8086?db=x", "htp:/x"])
def test_bad_influx_urls(url: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_url(url)
    assert exc.value.errors[0].startswith("--influx-url: ")


def test_database_names() -> None:
    assert check_database("lxd_1") == "lxd_1"
    with pytest.raises(SpecError):
        check_database('x"; DROP')
