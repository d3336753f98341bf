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


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(rows: Iterable[dict[str, Any]]) -> str:
    """Prometheus text exposition (one sample of each series, no timestamps: a scrape's view)."""
    rows = list(rows)
    out = []
    for key, help_text in METRICS.items():
        series = [(r, r.get(key)) for r in rows if _field(r.get(key)) is not None]
        if not series:
            continue
        out.append(f"# HELP {MEASUREMENT}_{key} {help_text}")
        out.append(f"# TYPE {MEASUREMENT}_{key} gauge")
        for r, v in series:
            value = repr(float(v)) if isinstance(v, float) else str(int(v or 0))
            out.append(f'{MEASUREMENT}_{key}{{kind="{_label(r["kind"])}",name="{_label(r["name"])}"}} {value}')
    return "\n".join(out)
