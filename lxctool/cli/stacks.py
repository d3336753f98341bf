"""Stack commands: plan, up, down, ps, logs, stack list (-f FILE itself: stack_file.py)."""

from __future__ import annotations

import collections
import json
import signal
from pathlib import Path
from typing import Any

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.cli.stack_file import file_option, teach_stack_file
from lxctool.core.errors import CheckFailed, SpecError
from lxctool.report.progress import progress
from lxctool.report.render import render

def _interruptible() -> None:
    """SIGTERM stops like Ctrl-C; SIGINT is installed too (a shell's `&` starts us with it ignored)."""
    from lxctool.stacks.handlers import STOP  # lazy: ~0.3 s of stack code, not paid by --help

    def handler(signum: int, frame: Any) -> None:
        STOP.set()  # worker threads waiting on a health check give up too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _parse_scale(items: tuple[str, ...]) -> dict[str, int]:

    out, errors = {}, []
    for item in items:
        svc, _, n = item.partition("=")
        if not svc or not n.isdigit() or int(n) < 1:
            errors.append(f"--scale: {item!r} is not SERVICE=N; use e.g. web=3 (N at least 1)")
        else:
            out[svc] = int(n)
    if errors:
        raise SpecError(errors)
    return out


@click.command()
@file_option
@click.option("--check", is_flag=True, help="Exit 3 when the stack differs from its file (drift).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: an array of {kind, target, detail}.")
@pass_app
def plan(app: App, stack_file: Path, check: bool, fmt: str) -> int:
    """Show what `up -f FILE` would change (observe once, change nothing).

    \b
    Kinds: create, update-live (with the keys), recreate (with the reason), start, stop, delete,
    noop, ensure-network, ensure-volume, ensure-profile, provision.
    Example: lxctool plan -f examples/mediawiki/stack.yaml --check
    """
    from lxctool.stacks.up import changes, prepare, stack_plan  # lazy: ~0.3 s of stack code, not paid by --help

    prep = prepare(app.lxd, stack_file, app.caps)
    ops = stack_plan(prep)
    if fmt == "json":
        emit(json.dumps([{"kind": d["kind"], "target": d["target"],
                          "detail": {**d["detail"], **({"reason": d["reason"]} if d["reason"] else {})}}
                         for d in (op.as_dict() for op in ops)], indent=2))
    else:
        emit("\n".join(prep.secrets.mask(op.describe()) for op in ops))
        progress(f"{len(changes(ops))} change(s), {len(ops) - len(changes(ops))} up to date")
    if check and changes(ops):
        raise CheckFailed(f"{len(changes(ops))} change(s) to make: the stack differs from its file")
    return 0


@click.command()
@file_option
@click.argument("services", nargs=-1, metavar="[SERVICE...]")
@click.option("--parallel", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Containers created or changed at once.")
@click.option("--scale", multiple=True, metavar="SERVICE=N", help="Run N replicas of SERVICE (repeatable).")
@format_option
@pass_app
def up(app: App, stack_file: Path, services: tuple[str, ...], parallel: int, scale: tuple[str, ...],
       fmt: str) -> None:
    """Create or converge the stack: exactly what `plan -f FILE` shows, in dependency order.

    \b
    Services wait for their dependencies to be started or healthy. Limits change live where
    LXD can (no restart); other changes recreate the container (volumes are kept).
    Another `up` or `down` of the same stack at the same time is refused.
    Example: lxctool up -f stack.yaml --parallel 4 --scale web=3
    """
    from lxctool.stacks import manage  # lazy: ~0.3 s of stack code, not paid by --help
    from lxctool.stacks.lock import stack_lock
    from lxctool.stacks.apply import Applier
    from lxctool.stacks.handlers import counting
    from lxctool.stacks.up import prepare

    scales = _parse_scale(scale)
    counter: collections.Counter[str] = collections.Counter()
    lxd = counting(app.lxd, counter)
    name = manage.stack_name(stack_file)
    _interruptible()
    with stack_lock(name, "up"):
        prep = prepare(lxd, stack_file, app.caps, services, scales)
        done = Applier(lxd, prep, parallel, counter).run()
        if prep.stack.monitor is not None:
            from lxctool.stacks.monitor import ensure_for  # lazy: only stacks with monitor: need it

            progress(ensure_for(lxd if done else None, prep.stack, prep.state.records))
    writes = sum(n for method, n in counter.items() if method != "GET")
    progress(f"{len(done)} change(s); LXD requests: {dict(sorted(counter.items()))} ({writes} writes)")
    # nothing changed: the observation made before is still the state (no further request)
    seen = None if done else list(prep.state.records.values())
    rows = manage.ps_rows(app.lxd, prep.stack, probe=False, instances=seen)
    emit(render(rows, ["name", "service", "state", "ipv4", "limits"], fmt))


@click.command()
@file_option
@click.option("--volumes", is_flag=True, help="Also delete the stack's volumes and its generated secrets.")
# LXD stops and deletes concurrently: 4 at once took 0.71x lxd-benchmark's time for 20, 2 took 1.07x
@click.option("--parallel", type=click.IntRange(1, 32), default=4, show_default=True)
@pass_app
def down(app: App, stack_file: Path, volumes: bool, parallel: int) -> None:
    """Remove the stack's containers, networks and profiles (volumes and secrets stay unless --volumes)."""
    from lxctool.stacks import manage, monitor  # lazy: ~0.3 s of stack code, not paid by --help
    from lxctool.stacks.lock import forget, stack_lock

    name = manage.stack_name(stack_file)
    _interruptible()
    with stack_lock(name, "down"):
        if monitor.stop(name):
            progress(f"stopped the monitor of {name}")
        removed = manage.down(app.lxd, name, volumes, parallel)
    forget(name)
    progress(f"removed {len(removed)} object(s) of stack {name}" if removed else f"stack {name} has nothing to remove")


@click.command()
@file_option
@click.option("--no-health", is_flag=True, help="Skip the health probes (only the one batched read).")
@format_option
@pass_app
def ps(app: App, stack_file: Path, no_health: bool, fmt: str) -> None:
    """Each replica: state, member, IPv4, health, limits, CPU and memory use against the limit."""
    from lxctool.stacks import manage, monitor  # lazy: ~0.3 s of stack code, not paid by --help
    from lxctool.stacks.load import load_stack

    stack = load_stack(stack_file)
    rows = manage.ps_rows(app.lxd, stack, probe=not no_health)
    cols = manage.PS_COLUMNS if fmt != "table" else [c for c in manage.PS_COLUMNS if c != "memory_limit_bytes"]
    mon = monitor.status(stack.name) if stack.monitor else None
    emit(render(rows, cols, fmt, data={"services": rows, "monitor": mon}))
    if mon is not None and fmt == "table":
        emit(f"monitor: {'running, pid ' + str(mon['pid']) if mon['running'] else 'not running'}"
             f" (log {monitor.logfile(stack.name)})")


@click.command()
@file_option
@click.argument("service")
@click.option("--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "lines", type=click.IntRange(1), default=100, show_default=True)
@pass_app
def logs(app: App, stack_file: Path, service: str, follow: bool, lines: int) -> int:
    """SERVICE[/N]'s journal (systemd images) or the files in its `logs:` key."""
    from lxctool.stacks import manage  # lazy: ~0.3 s of stack code, not paid by --help
    from lxctool.stacks.load import load_stack

    stack = load_stack(stack_file)
    names = manage.replicas(app.lxd, stack, [service])
    svc = stack.service(service.partition("/")[0])
    rc = 0
    for name in names[:1] if follow else names:
        if len(names) > 1 and not follow:
            progress(f"== {name} ==")
        systemd = app.lxd.exec(name, ["test", "-d", "/run/systemd/system"]).exit_code == 0
        if systemd:
            argv = ["journalctl", "--no-pager", "-n", str(lines)] + (["-f"] if follow else [])
        elif svc.logs:
            argv = ["tail", "-n", str(lines)] + (["-f"] if follow else []) + list(svc.logs)
        else:
            raise SpecError(f"services.{svc.name}.logs: {name} has no journal; list its log files under logs:")
        rc = app.lxd.exec_stream(name, argv) or rc
    return rc


@click.group(name="stack")
def stack_group() -> None:
    """Stacks on this host."""


@stack_group.command(name="list")
@format_option
@pass_app
def stack_list(app: App, fmt: str) -> None:
    """The stacks on this host (by their labels) and their state."""
    from lxctool.stacks.manage import stack_list as rows  # lazy: ~0.3 s of stack code, not paid by --help

    emit(render(rows(app.lxd), ["name", "state", "containers", "running", "services"], fmt))


def register(group: click.Group) -> None:
    """Add the stack commands; teach exec, restart and verify `-f FILE` (registered before us)."""
    for cmd in (plan, up, down, ps, logs, stack_group):
        group.add_command(cmd)
    teach_stack_file(group)
