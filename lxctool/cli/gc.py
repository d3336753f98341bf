"""`lxctool gc`: remove what interrupted lxctool runs left behind, and say what."""

from __future__ import annotations

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@format_option
@pass_app
def gc(app: App, dry_run: bool, fmt: str) -> None:
    """Remove debris of interrupted runs whose lxctool process is gone.

    \b
    Only what lxctool marked as temporary with its owner process is considered:
      container     verify peers (vf-peer-*) and experiment scratch containers (ex-*)
      process       workloads and net check listeners left inside containers
      build-folder  image build work folders with /proc, /sys, /dev still mounted in them
      ifb           host-side shaping devices of containers that no longer exist
    Things a running lxctool still owns, and anything without a marker, are left alone.
    """
    from lxctool.apply import gc as core  # lazy: not paid by --help
    from lxctool.report.render import render  # lazy: not paid by --help

    found = core.find(app.lxd)
    done = found if dry_run else core.remove(app.lxd, found)
    verb = "would remove" if dry_run else "removed"
    for item in done:
        click.echo(f"lxctool: {verb} {item.kind} {item.name} ({item.detail})", err=True)
    for item in [d for d in found if d not in done]:
        click.echo(f"lxctool: could not remove {item.kind} {item.name} ({item.detail})", err=True)
    if not found:
        click.echo("lxctool: nothing to remove", err=True)
    emit(render([d.row() for d in done], ["kind", "name", "detail"], fmt))


def register(group: click.Group) -> None:
    """Add gc to the lxctool group."""
    group.add_command(gc)
