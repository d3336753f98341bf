"""`lxctool doctor`."""

from __future__ import annotations

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.report.render import render


@click.command()
@format_option
@pass_app
def doctor(app: App, fmt: str) -> int:
    """Check this host: what it can enforce, and lxctool's daemon, pool, bridge, rule and profile.

    Exits 1 when something lxctool needs is missing; each such line says how to fix it.
    """
    from lxctool.observe.doctor import run_checks  # lazy: 40-90 ms, not paid by --help

    rows = run_checks(app.lxd, app.caps)
    emit(render(rows, ["check", "status", "detail", "fix"], fmt))
    return 1 if any(r["status"] == "missing" and r["needed"] for r in rows) else 0


def register(group: click.Group) -> None:
    """Add doctor."""
    group.add_command(doctor)
