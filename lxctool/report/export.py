"""compare rows -> InfluxDB line protocol and Prometheus text exposition."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

MEASUREMENT = "lxctool"

# numeric fields exported, with the help text Prometheus shows
METRICS: dict[str, str] = {
    "processes": "Processes (host: all PIDs; container: its PID namespace)",
    "tasks": "Tasks (container: its pids cgroup counter; host: all threads)",
    "threads": "Threads",
    "cpu_percent": "CPU use, 100 = one host CPU",
    "cpu_percent_of_limit": "CPU use as a percentage of the CPU limit",
    "cpu_limit_cpus": "CPU limit in CPUs (quota or cpuset)",
    "load1": "Host load average over 1 minute",
    "memory_bytes": "Memory used (container: cgroup charge incl. page cache)",
    "memory_limit_bytes": "Memory limit (host: total memory)",
    "memory_peak_bytes": "Peak memory charge of the container's cgroup",
    "swap_bytes": "Swap used",
    "disk_bytes": "Root disk used",
    "disk_total_bytes": "Root disk size (host)",
    "net_rx_bytes_per_s": "Bytes received per second",
    "net_tx_bytes_per_s": "Bytes sent per second",
    "processes_in_containers": "Host processes that belong to containers",
    "processes_host_only": "Host processes outside every container",
}


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field(value: Any) -> str | None:
    if value is None or isinstance(value, (list, dict, str)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(float(value))


def _ns(row: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(row["time"]).timestamp() * 1e9)


def influx_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    """One line per row: lxctool,kind=...,name=... field=value... timestamp(ns)."""
    out = []
    for row in rows:
        fields = [f"{k}={v}" for k in METRICS if (v := _field(row.get(k))) is not None]
        if not fields:
            continue
        tags = f"kind={_tag(row['kind'])},name={_tag(row['name'])}"
        out.append(f"{MEASUREMENT},{tags} {','.join(fields)} {_ns(row)}")
    return out


# (compare row key, Prometheus metric name, type, help). Prometheus conventions: base units,
# cumulative values as counters named *_total, and no pre-computed rates (cpu_percent and
# *_bytes_per_s stay out: Prometheus computes rates itself with rate()).
PROMETHEUS: list[tuple[str, str, str, str]] = [
    ("processes", "processes", "gauge", "Processes (host: all PIDs; container: its PID namespace)"),
    ("tasks", "tasks", "gauge", "Tasks (container: its pids cgroup counter; host: all threads)"),
    ("pids_max", "tasks_max", "gauge", "Task limit the kernel enforces (pids.max, from limits.processes)"),
    ("threads", "threads", "gauge", "Threads"),
    ("cpu_seconds_total", "cpu_seconds_total", "counter", "CPU time used in seconds (host: busy time of all CPUs)"),
    ("cpu_limit_cpus", "cpu_limit_cpus", "gauge", "CPU limit in CPUs (quota or cpuset; host: its CPU count)"),
    ("load1", "load1", "gauge", "Host load average over 1 minute"),
    ("memory_bytes", "memory_bytes", "gauge", "Memory used (container: cgroup charge incl. page cache)"),
    ("memory_limit_bytes", "memory_limit_bytes", "gauge", "Memory limit (host: total memory)"),
    ("memory_peak_bytes", "memory_peak_bytes", "gauge", "Peak memory charge of the container's cgroup"),
    ("memory_cache_bytes", "memory_cache_bytes", "gauge", "Host page cache and buffers"),
    ("swap_bytes", "swap_bytes", "gauge", "Swap used"),
    ("disk_bytes", "disk_bytes", "gauge", "Root disk used"),
    ("disk_total_bytes", "disk_size_bytes", "gauge", "Root disk size (host)"),
    ("net_rx_bytes_total", "network_receive_bytes_total", "counter", "Bytes received on its network interfaces"),
    ("net_tx_bytes_total", "network_transmit_bytes_total", "counter", "Bytes sent on its network interfaces"),
    ("processes_in_containers", "processes_in_containers", "gauge", "Host processes that belong to containers"),
    ("processes_host_only", "processes_host_only", "gauge", "Host processes outside every container"),
]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def prometheus_text(rows: Iterable[dict[str, Any]]) -> str:
    """Prometheus text exposition (one sample of each series, no timestamps: a scrape's view)."""
    rows = list(rows)
    out = []
    for key, name, kind, help_text in PROMETHEUS:
        series = [(r, r.get(key)) for r in rows if _field(r.get(key)) is not None]
        if not series:
            continue
        out.append(f"# HELP {MEASUREMENT}_{name} {help_text}")
        out.append(f"# TYPE {MEASUREMENT}_{name} {kind}")
        for r, v in series:
            out.append(f'{MEASUREMENT}_{name}{{kind="{_label(r["kind"])}",name="{_label(r["name"])}"}} {_number(v)}')
    return "\n".join(out) + "\n"
