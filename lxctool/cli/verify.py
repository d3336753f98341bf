"""`verify` (prove limits) and `experiment run` (sweep one limit, write CSV, PNG and summary)."""

from __future__ import annotations

from pathlib import Path

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.cli.params import CONTAINER, finite
from lxctool.core.errors import CheckFailed
from lxctool.report.progress import progress
from lxctool.report.render import render


def _sigterm_as_interrupt() -> None:
    """SIGINT and SIGTERM clean up like Ctrl-C (workloads killed, containers removed); see
    cli.install_signal_handlers (SIGTERM exits 143, SIGINT 130, also when inherited ignored)."""
    from lxctool.cli import install_signal_handlers  # lazy: not paid by --help

    install_signal_handlers()


@click.command()
@click.argument("name", callback=CONTAINER)
@click.option("--only", metavar="KINDS",
              help="Comma-separated: cpu, memory, processes, disk-io, disk-size, net (default: all configured).")
@click.option("--duration", type=float, default=5.0, show_default=True, metavar="S", callback=finite(0.5, 600),
              help="Seconds of load per CPU measurement; disk and network transfers are sized to last about this long.")
@format_option
@pass_app
def verify(app: App, name: str, only: str | None, duration: float, fmt: str) -> int:
    """Prove NAME's limits: push a workload past each one and measure it from the host.

    \b
    Verdicts: ENFORCED, NOT ENFORCED, SOFT (a share, not a cap), UNSUPPORTED: reason.
    Exit 3 when any configured limit is NOT ENFORCED or UNSUPPORTED.
    The container is left as it was (workloads killed, files removed).
    Example: lxctool verify exp --only cpu,memory
    """
    from lxctool.verify import runner as core  # lazy: 40-90 ms, not paid by --help

    kinds = core.parse_only(only)
    ctx = core.context(app.lxd, name, duration, app.caps)
    _sigterm_as_interrupt()
    findings = core.run(ctx, kinds)
    rows = [f.row() for f in findings]
    emit(render(rows, core.COLUMNS if fmt == "table" else core.COLUMNS +
                ["configured_value", "measured_value", "unit"], fmt,
                data={"name": name, "findings": rows}))
    failing = core.failing_limits(findings)
    try:
        core.save_results(name, rows, 3 if failing else 0)
    except OSError as exc:  # the proof above stands; only the dashboard's copy is missing
        progress(f"warning: could not keep the results for the dashboard: {exc}")
    if failing:
        raise CheckFailed(f"{name}: {', '.join(failing)} not enforced or unsupported")
    return 0


@click.group()
def experiment() -> None:
    """Sweep one limit over values and plot configured against measured."""


@experiment.command(name="run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Where results.csv, plot.png and summary.txt go (default: ./results/FILE-STEM).")
@format_option
@pass_app
def experiment_run(app: App, file: Path, out: Path | None, fmt: str) -> None:
    """Run the sweep in FILE: a container per run, each point x repeats, then CSV, PNG and summary.

    \b
    FILE keys: limit (cpu | mem | processes), values (the sweep), repeats, duration (s per run),
    description, image, fixed (other limits, as launch options). Ctrl-C stops after cleaning up.
    Example: lxctool experiment run experiments/cpu-quota.yaml --out /tmp/cpu
    """
    from lxctool.verify import experiment as core  # lazy: 40-90 ms, not paid by --help

    exp = core.load(file, app.caps.cpus)
    out = out or Path("results") / exp.name
    _sigterm_as_interrupt()
    summary = core.run(app.lxd, exp, out, app.caps)
    emit(render(core.display(summary) if fmt == "table" else summary,
                list(summary[0]) if summary else [], fmt))
    for what in ("results.csv", "plot.png", "summary.txt"):
        progress(f"wrote {out / what}")


def register(group: click.Group) -> None:
    """Add these commands to the lxctool group."""
    group.add_command(verify)
    group.add_command(experiment)
