"""`lxctool cluster list`: the members of the LXD cluster behind the selected remote."""

from __future__ import annotations

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.lxd.cluster import members
from lxctool.report.render import render


@click.group()
def cluster() -> None:
    """LXD clusters: members, their state and what runs where.

    \b
    Try one on this machine:  scripts/cluster-sandbox.sh up 3
                              lxctool --remote sandbox cluster list
                              lxctool --remote sandbox launch web1 --target member2
    """


@cluster.command(name="list")
@format_option
@pass_app
def list_(app: App, fmt: str) -> None:
    """Members with status (as LXD says it: Online, Offline...), roles and container counts."""
    found = members(app.lxd)
    counts: dict[str, int] = {}
    # one request; an offline member's containers are still listed by the database
    for inst in app.lxd.instance_records():
        loc = inst.get("location") or ""
        counts[loc] = counts.get(loc, 0) + 1
    rows = [{"name": m["name"], "status": m["status"], "roles": m["roles"],
             "instances": counts.get(m["name"], 0) if m["clustered"] else sum(counts.values()),
             "address": m["address"], "message": m["message"]} for m in found]
    if fmt == "table":
        for r in rows:
            r["roles"] = ", ".join(r["roles"]) or "-"
    emit(render(rows, ["name", "status", "roles", "instances", "address", "message"], fmt))
    offline = [r["name"] for r in rows if r["status"] != "Online"]
    if offline:
        click.echo(f"lxctool: warning: {', '.join(offline)} not online: commands that need "
                   f"{'them' if len(offline) > 1 else 'it'} will fail until it is back", err=True)


def register(cli: click.Group) -> None:
    """Add `cluster` to the CLI."""
    cli.add_command(cluster)
