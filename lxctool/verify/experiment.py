"""`experiment run`: sweep one limit over values, measure each point with verify's probe, repeat,
and write results.csv (configured, measured, repeat, verdict), plot.png and summary.txt."""

from __future__ import annotations

import math
import re
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lxctool.apply.launch import apply_launch, prepare_launch
from lxctool.apply.executor import apply
from lxctool.apply.lifecycle import prepare_limits
from lxctool.core.errors import SpecError
from lxctool.core.spec import LaunchSpec, Limits, check_floors, check_limits_for_host, parse_limits
from lxctool.host.caps import HostCapabilities
from lxctool.host.files import read_yaml
from lxctool.lxd.client import Lxd
from lxctool.report.plot import sweep_plot
from lxctool.report.progress import progress as report_progress
from lxctool.report.render import render
from lxctool.verify import runner as verify

# sweepable limit -> (verify kind, the LXD key whose finding is plotted, axis label)
SWEEPS: dict[str, tuple[str, str, str]] = {
    "cpu": ("cpu", "limits.cpu.allowance", "CPU time (CPUs; 1 = one host CPU)"),
    "mem": ("memory", "limits.memory", "memory (MB)"),
    "processes": ("processes", "limits.processes", "tasks"),
}
KEYS = ("description", "limit", "values", "repeats", "duration", "image", "fixed")
CSV_COLUMNS = ["limit", "unit", "configured", "measured", "repeat", "verdict"]


@dataclass(frozen=True)
class Experiment:
    """A validated sweep."""

    name: str
    description: str
    limit: str
    values: tuple[str, ...]
    repeats: int
    duration: float
    image: str
    fixed: Limits


def _number(value: Any, label: str, low: float, high: float, errors: list[str], integer: bool = False) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if ok and integer and value != int(value):
        ok = False
    if not ok:
        errors.append(f"{label}: {value!r} is not valid; use a {'whole ' if integer else ''}number "
                      f"from {low:g} to {high:g}")
    return value


def load(path: Path, host_cpus: int) -> Experiment:
    """Read and validate an experiment file; SpecError lists every problem, each with its key."""
    data = read_yaml(path, "the experiment")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: an experiment is a mapping with keys {', '.join(KEYS)}")
    errors = [f"{path.name}: {k}: unknown key; use {', '.join(KEYS)}" for k in data if k not in KEYS]
    limit = data.get("limit")
    if limit not in SWEEPS:
        errors.append(f"{path.name}: limit: {limit!r} cannot be swept; use one of {', '.join(SWEEPS)}")
    values = data.get("values")
    if not isinstance(values, list) or not values:
        errors.append(f"{path.name}: values: the sweep is empty; give a list of at least one value")
        values = []
    def label(key: str) -> str:
        return f"{path.name}: {key}"

    image_name = str(data.get("image", "busybox"))
    from lxctool.core.names import check_image  # lazy: only this path needs it
    from lxctool.images.recipes import image_family  # lazy: only this path needs it

    family = "busybox" if check_image(image_name) else image_family(image_name)
    if limit in SWEEPS:
        for i, v in enumerate(values):
            where = f"values[{i}]"
            point = parse_limits({limit: v}, lambda k: label(where), errors)
            if limit == "cpu" and point.cpu is not None and point.cpu.quota is None:
                errors.append(f"{label(where)}: {v!r} is a CPU count; sweep fractions "
                              f"like 0.2, 0.5 (a hard quota)")
            errors += check_limits_for_host(point, host_cpus, lambda k: label(where))
            errors += check_floors(point, family, lambda k: label(where))
    repeats = _number(data.get("repeats", 1), label("repeats"), 1, 100, errors, integer=True)
    duration = _number(data.get("duration", 5), label("duration"), 1, 600, errors)
    fixed_raw = data.get("fixed") or {}
    if not isinstance(fixed_raw, dict):
        errors.append(f"{label('fixed')}: a mapping of limit names to values")
        fixed_raw = {}
    fixed = parse_limits(fixed_raw, lambda k: label(f"fixed.{k}"), errors)
    errors += check_image(image_name, label("image"))
    if errors:
        raise SpecError(errors)
    return Experiment(name=path.stem, description=str(data.get("description", "")), limit=str(limit),
                      values=tuple(str(v) for v in values), repeats=int(repeats), duration=float(duration),
                      image=str(data.get("image", "busybox")), fixed=fixed)


def run(lxd: Lxd, exp: Experiment, out: Path, caps: HostCapabilities,
        progress: Callable[[str], None] = report_progress) -> list[dict[str, Any]]:
    """Launch a container, measure every point x repeat, remove it (also on Ctrl-C); write files."""
    out.mkdir(parents=True, exist_ok=True)
    kind, key, _ = SWEEPS[exp.limit]
    name = f"ex-{re.sub(r'[^A-Za-z0-9]+', '-', exp.name)[:40].strip('-') or 'sweep'}-{secrets.token_hex(2)}"
    errors: list[str] = []
    first = exp.fixed.merged(parse_limits({exp.limit: exp.values[0]}, str, errors))
    from lxctool.apply import gc  # lazy: only this path needs it

    for item in gc.remove(lxd, gc.containers(lxd, prefix="ex-")):
        progress(f"removed {item.name} left by an interrupted experiment ({item.detail})")
    plan = prepare_launch(lxd, LaunchSpec(name=name, image=exp.image, limits=first), caps)
    gc.mark_plan(plan.ops, name)  # marked from its creation on: gc finds it after kill -9
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        apply_launch(lxd, plan)
        for i, value in enumerate(exp.values):
            _, ops = prepare_limits(lxd, name, parse_limits({exp.limit: value}, str, errors), caps)
            apply(lxd, ops)
            for repeat in range(1, exp.repeats + 1):
                progress(f"point {i + 1}/{len(exp.values)} {exp.limit}={value}, repeat {repeat}/{exp.repeats}")
                ctx = verify.context(lxd, name, exp.duration, caps, progress=lambda m: None)
                finding = next(f for f in verify.run(ctx, (kind,)) if f.limit == key)
                rows.append({"limit": exp.limit, "unit": finding.unit,
                             "configured": finding.configured_value, "measured": finding.measured_value,
                             "repeat": repeat, "verdict": finding.verdict})
    finally:
        _remove(lxd, name)
    write_outputs(exp, rows, out, time.monotonic() - started)
    return point_summary(rows)


def _remove(lxd: Lxd, name: str) -> None:
    if not lxd.remove_instance(name):  # a fresh connection: on Ctrl-C the shared one may be mid-request
        report_progress(f"could not remove {name}; `lxctool gc` removes it")


def point_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configured value: mean, min, max of measured, and the verdicts."""
    points: dict[float, list[dict[str, Any]]] = {}
    for r in rows:
        points.setdefault(r["configured"], []).append(r)
    out = []
    for conf, rs in sorted(points.items()):
        vals = [r["measured"] for r in rs if r["measured"] is not None]
        mean = statistics.fmean(vals) if vals else math.nan
        out.append({"configured": conf, "unit": rs[0]["unit"], "runs": len(rs),
                    "measured_mean": round(mean, 4), "measured_min": min(vals, default=None),
                    "measured_max": max(vals, default=None),
                    "measured_over_configured": round(mean / conf, 3) if conf else None,
                    "verdicts": ",".join(sorted({r["verdict"] for r in rs}))})
    return out


def display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with floats as short exact text (tables round floats to one decimal otherwise)."""
    return [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


def rises_with_configured(summary: list[dict[str, Any]]) -> bool:
    """Whether the mean measured value rises strictly with the configured value."""
    means = [p["measured_mean"] for p in summary]
    return all(b > a for a, b in zip(means, means[1:]))


def write_outputs(exp: Experiment, rows: list[dict[str, Any]], out: Path, seconds: float) -> None:
    """results.csv, plot.png and summary.txt in out."""
    (out / "results.csv").write_text(render(rows, CSV_COLUMNS, "csv") + "\n")
    summary = point_summary(rows)
    plot(exp, rows, summary, out / "plot.png")
    lines = [f"experiment: {exp.name}" + (f" - {exp.description}" if exp.description else ""),
             f"swept {exp.limit} over {', '.join(exp.values)}; {exp.repeats} repeat(s)"
             + (f" of {exp.duration:g} s of load" if exp.limit == "cpu" else "")
             + f"; {len(rows)} runs in {seconds:.0f} s", ""]
    lines.append(render(display(summary), list(summary[0]) if summary else [], "table"))
    lines += ["", f"measured rises with configured: {'yes' if rises_with_configured(summary) else 'NO'}",
              f"runs ENFORCED: {sum(r['verdict'] == 'ENFORCED' for r in rows)} of {len(rows)}"]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")


def plot(exp: Experiment, rows: list[dict[str, Any]], summary: list[dict[str, Any]], path: Path) -> None:
    """Configured vs measured: each run, the mean per point, and the ideal line y = x."""
    measured = [(r["configured"], r["measured"]) for r in rows if r["measured"] is not None]
    means = [(p["configured"], p["measured_mean"]) for p in summary]
    sweep_plot(measured, means, path, axis=SWEEPS[exp.limit][2], title=exp.description or f"{exp.limit} sweep",
               repeats=exp.repeats, tolerance_band=exp.limit == "cpu")
