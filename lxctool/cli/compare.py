"""`compare` (the host VM beside its containers) and `monitor` (push samples to InfluxDB)."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from lxctool.cli import App
from lxctool.cli import checked
from lxctool.cli import emit
from lxctool.cli import pass_app
from lxctool.cli.params import CONTAINER
from lxctool.core.errors import SpecError
from lxctool.report.export import influx_lines, prometheus_text
from lxctool.report.progress import progress
from lxctool.report.render import render

COMPARE_FORMATS = ("table", "json", "csv", "influx", "prometheus")


def _say(message: str) -> None:
    progress(message)


def _table(data: list[dict[str, Any]], explain: bool) -> str:
    from lxctool.observe.compare import HEADERS, COLUMNS, attribution_rows, explain as notes, table_rows  # lazy: 40-90 ms, not paid by --help

    parts = [render(table_rows(data), COLUMNS, "table", headers=HEADERS)]
    if "processes_by_container" in data[0]:  # only a local host's /proc can attribute processes
        parts += ["", f"where the host's {data[0]['processes']} processes run:",
                  render(attribution_rows(data[0]), ["where", "processes"], "table")]
    if explain:
        parts += ["", "why the numbers differ:"] + [f"- {n}" for n in notes(data)]
    return "\n".join(parts)


def _watch(app: App, names: list[str] | None, interval: float, count: int | None, explain: bool) -> None:
    """Redraw like top until SIGINT (exit 0, terminal restored)."""
    from lxctool.observe.compare import samples  # lazy: 40-90 ms, not paid by --help

    tty = sys.stdout.isatty()
    out = sys.stdout
    if tty:
        out.write("\033[?1049h\033[?25l")  # alternate screen, hide cursor
        out.flush()
    try:
        for data in samples(app.lxd, names, interval, count):
            text = f"lxctool compare  every {interval:g}s  {data[0]['time']}  (Ctrl-C quits)\n\n" + _table(data, explain)
            out.write(("\033[H\033[2J" + text) if tty else text + "\n\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if tty:
            out.write("\033[?25h\033[?1049l")  # show cursor, back to the normal screen
            out.flush()


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME...]", callback=CONTAINER)
@click.option("--interval", default="1", metavar="S", show_default=True,
              help="Seconds between the two samples that give CPU % and rates (and between redraws).")
@click.option("--samples", "count", default=None, metavar="N",
              help="How many measurements (default 1; with --watch: until Ctrl-C).")
@click.option("--watch", is_flag=True, help="Redraw in place every interval, like top; Ctrl-C quits.")
@click.option("--explain", is_flag=True, help="Add notes on why host and container numbers differ.")
@click.option("--plot", "plot_path", metavar="FILE.png", help="Draw the samples (with limits) into a PNG.")
@click.option("--format", "fmt", type=click.Choice(COMPARE_FORMATS), default="table", envvar="LXCTOOL_FORMAT",
              show_default=True, help="table for people; json/csv for tools; influx line protocol; prometheus text.")
@pass_app
def compare(app: App, names: tuple[str, ...], interval: str, count: str | None, watch: bool, explain: bool,
            plot_path: str | None, fmt: str) -> None:
    """The host VM beside its containers: processes, CPU, memory, disk, network, against limits.

    \b
    Without NAMEs every container is shown. CPU % is measured between two samples
    (100 = one host CPU); `% of limit` is against the container's quota or cpuset.
    Examples:
      lxctool compare --explain            # where do more processes run, and why
      lxctool compare web1 db --watch      # follow them live (Ctrl-C quits)
      lxctool compare --samples 30 --plot usage.png
      lxctool compare --format influx      # line protocol for InfluxDB/Telegraf
    """
    from lxctool.observe.compare import CSV_COLUMNS, explain as notes, positive, samples, select  # lazy: 40-90 ms, not paid by --help

    errors: list[str] = []
    seconds = checked(errors, positive, interval, "--interval")
    n = checked(errors, positive, count, "--samples", int) if count is not None else None
    if watch and (plot_path or fmt != "table"):
        errors.append("--watch: redraws a table on the terminal; use it without --plot and --format")
    if plot_path and not plot_path.lower().endswith(".png"):
        errors.append(f"--plot: {plot_path!r} is not a .png file name; use e.g. usage.png")
    if plot_path:
        import os

        folder = os.path.dirname(os.path.abspath(plot_path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):  # refuse before sampling
            errors.append(f"--plot: folder {folder} does not exist or is not writable; create it first")
    if errors:
        raise SpecError(errors)
    selected = select(app.lxd, list(names))
    if watch:
        _watch(app, selected, seconds, n, explain)
        return
    n = n or 1
    _say(f"measuring over {n} x {seconds:g}s")
    series: list[list[dict[str, Any]]] = []
    for data in samples(app.lxd, selected, seconds, n):
        series.append(data)
        if fmt == "table":
            emit((f"\n{data[0]['time']}\n" if n > 1 else "") + _table(data, explain))
        elif fmt == "influx":
            emit("\n".join(influx_lines(data)))
    flat = [row for data in series for row in data]
    if fmt == "json":
        emit(json.dumps(flat, indent=2))
    elif fmt == "csv":
        emit(render(flat, CSV_COLUMNS, "csv"))
    elif fmt == "prometheus":
        emit(prometheus_text(series[-1]))
    if explain and fmt != "table":
        for note in notes(series[-1]):
            _say(note)
    if plot_path:
        from lxctool.report.plot import plot  # lazy: 40-90 ms, not paid by --help

        plot(series, plot_path)
        _say(f"wrote {plot_path} ({len(series)} samples)")


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME...]", callback=CONTAINER)
@click.option("--influx-url", required=True, metavar="URL", envvar="LXCTOOL_INFLUX_URL",
              help="InfluxDB 1.x base URL, e.g. http://127.0.0.1:8086. Env: LXCTOOL_INFLUX_URL.")
@click.option("--database", required=True, metavar="DB", help="Database to write to (created if missing).")
@click.option("--interval", default="10", metavar="S", show_default=True, help="Seconds between samples.")
@click.option("--samples", "count", default=None, metavar="N", help="Stop after N samples (default: never).")
@pass_app
def monitor(app: App, names: tuple[str, ...], influx_url: str, database: str, interval: str,
            count: str | None) -> None:
    """Push compare samples of the host and containers to InfluxDB until stopped (Ctrl-C).

    \b
    Measurement `lxctool`, tags kind (host|container) and name, the compare fields as fields.
    An unreachable server at start exits 1; a server lost later gives a warning per failed
    push, sampling goes on and queued points are sent when it answers again.
    Example: lxctool monitor --influx-url http://127.0.0.1:8086 --database lxd --interval 5
    """
    from lxctool.observe.compare import positive, select  # lazy: 40-90 ms, not paid by --help
    from lxctool.observe.monitor import Influx, check_database, parse_url, run  # lazy: 40-90 ms, not paid by --help

    errors: list[str] = []
    seconds = checked(errors, positive, interval, "--interval")
    n = checked(errors, positive, count, "--samples", int) if count is not None else None
    checked(errors, parse_url, influx_url)
    checked(errors, check_database, database)
    if errors:
        raise SpecError(errors)
    influx = Influx(influx_url, database)
    selected = select(app.lxd, list(names))

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    stats = run(app.lxd, influx, selected, seconds, n, lambda m: _say(f"warning: {m}"), _say)
    _say(f"stopped: {stats.samples} samples, {stats.points_sent} points written, "
         f"{stats.failed_pushes} failed pushes, {stats.queued} points unsent")


def register(group: click.Group) -> None:
    """Add compare and monitor to the lxctool group."""
    group.add_command(compare)
    group.add_command(monitor)
