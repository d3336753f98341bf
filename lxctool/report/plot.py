"""The one matplotlib user: `compare --plot` (host and containers over time, each container's
limit as a dashed line) and `experiment run`'s plot.png (configured against measured).

matplotlib is imported here only (and only when plotting), so `lxctool --help` stays fast.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

HOST_COLOR = "#000000"
# fixed palette: containers get these in name order, so a reader (or a test) knows each colour
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def colors(names: list[str]) -> dict[str, str]:
    """The colour of each container: PALETTE in sorted-name order."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(names))}


def plot(series: list[list[dict[str, Any]]], path: str) -> None:
    """Draw CPU % and memory of the host and each container over the samples into a PNG."""
    import matplotlib  # lazy: ~0.3 s, only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = [datetime.fromisoformat(rows[0]["time"]) for rows in series]
    names = sorted({r["name"] for rows in series for r in rows if r["kind"] == "container"})
    color = colors(names)
    fig, (ax_cpu, ax_mem) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)

    def values(name: str, key: str) -> list[float]:
        out = []
        for rows in series:
            row = next((r for r in rows if r["name"] == name), None)
            v = row.get(key) if row else None
            out.append(float("nan") if v is None else float(v))
        return out

    ax_cpu.plot(times, values("host", "cpu_percent"), color=HOST_COLOR, linewidth=2, label="host")
    ax_mem.plot(times, [v / 1e6 for v in values("host", "memory_bytes")], color=HOST_COLOR, linewidth=2,
                label="host (used)")
    for name in names:
        c = color[name]
        ax_cpu.plot(times, values(name, "cpu_percent"), color=c, linewidth=1.5, label=name)
        ax_mem.plot(times, [v / 1e6 for v in values(name, "memory_bytes")], color=c, linewidth=1.5, label=name)
        cpu_limit = next((v for v in values(name, "cpu_limit_cpus") if v == v), None)
        if cpu_limit:
            ax_cpu.axhline(cpu_limit * 100, color=c, linestyle=(0, (6, 3)), linewidth=1.5,
                           label=f"{name} limit {cpu_limit:g} CPU")
        mem_limit = next((v for v in values(name, "memory_limit_bytes") if v == v), None)
        if mem_limit:
            ax_mem.axhline(mem_limit / 1e6, color=c, linestyle=(0, (6, 3)), linewidth=1.5,
                           label=f"{name} limit {mem_limit / 1e6:.0f} MB")
    ax_cpu.set_ylabel("CPU % (100 = one host CPU)")
    ax_cpu.set_ylim(bottom=0, top=max(ax_cpu.get_ylim()[1], 1.0) * 1.15)
    ax_mem.set_ylabel("memory (MB, log scale)")
    ax_mem.set_yscale("log")
    ax_mem.set_xlabel("time (UTC)")
    for ax in (ax_cpu, ax_mem):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0)
    ax_mem.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    fig.suptitle("lxctool compare: host VM and containers")
    fig.autofmt_xdate()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def sweep_plot(measured: list[tuple[float, float]], means: list[tuple[float, float]], path: Path, *,
               axis: str, title: str, repeats: int, tolerance_band: bool) -> None:
    """Configured vs measured: each run, the mean per point, and the ideal line y = x, as a PNG."""
    import matplotlib  # lazy: ~0.3 s, only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    xs = [x for x, _ in measured]
    top = max(xs + [y for _, y in measured] + [0.0]) * 1.15 or 1.0
    ax.plot([0, top], [0, top], "--", color="grey", label="ideal: measured = configured")
    if tolerance_band:
        ax.fill_between([0, top], [0, top], [0, top * 1.05], color="grey", alpha=0.15,
                        label="verify's tolerance (quota + 5%)")
    ax.scatter(xs, [y for _, y in measured], alpha=0.5, color="tab:blue", label=f"each run ({repeats} per point)")
    ax.plot([x for x, _ in means], [y for _, y in means], "o-", color="tab:red", label="mean")
    for x, y in means:
        ax.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(f"configured {axis}")
    ax.set_ylabel(f"measured {axis}")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
