"""Stack commands: plan, up, down, ps, logs, stack list; and -f FILE on exec, restart and verify."""

from __future__ import annotations

import collections
import signal
from pathlib import Path
from typing import Any, Callable

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.core.errors import CheckFailed

FILE = click.Path(dir_okay=False, path_type=Path)
FILE_HELP = ("The stack file (see examples/), or a docker-compose file (compose.yaml, "
             "docker-compose.yml, or any file with a version: key).")
COMPOSE_FLAGS = {
    "compose": "Read -f FILE as a docker-compose file whatever its name.",
    "allow-bind-mounts": "Compose: carry bind mounts over as disk devices (they reach into the host).",
    "strict": "Compose: refuse (exit 2) when a key cannot be carried over, instead of warning.",
}


def _remember_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[f"lxctool.{param.name}"] = value
    return value


def _read_options(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Set how -f is read for this invocation (the flags are eager, so they are known by now)."""
    from lxctool.stacks.compose_file import OPTIONS, ComposeOptions  # lazy: no stack code for --help

    OPTIONS.set(ComposeOptions(force=ctx.meta.get("lxctool.compose", False),
                               allow_bind_mounts=ctx.meta.get("lxctool.allow_bind_mounts", False),
                               strict=ctx.meta.get("lxctool.strict", False)))
    return value


def _flag_kwargs(flag: str) -> dict[str, Any]:
    return {"is_flag": True, "is_eager": True, "expose_value": False, "callback": _remember_flag,
            "help": COMPOSE_FLAGS[flag]}


def compose_flags() -> list[click.Option]:
    """--compose, --allow-bind-mounts, --strict: how a -f file is read."""
    return [click.Option([f"--{flag}"], **_flag_kwargs(flag)) for flag in COMPOSE_FLAGS]


def file_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """-f FILE (required) and the flags that say how it is read."""
    func = click.option("-f", "--file", "stack_file", type=FILE, required=True, metavar="FILE",
                        callback=_read_options, help=FILE_HELP)(func)
    for flag in COMPOSE_FLAGS:
        func = click.option(f"--{flag}", **_flag_kwargs(flag))(func)
    return func


def _say(message: str) -> None:
    from lxctool.report.progress import progress  # lazy: the one stderr reporter

    progress(message)


def _interruptible() -> None:
    """SIGTERM stops like Ctrl-C; SIGINT is installed too (a shell's `&` starts us with it ignored)."""
    from lxctool.stacks.handlers import STOP  # lazy: `lxctool --help` loads no stack code

    def handler(signum: int, frame: Any) -> None:
        STOP.set()  # worker threads waiting on a health check give up too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _parse_scale(items: tuple[str, ...]) -> dict[str, int]:
    from lxctool.core.errors import SpecError  # lazy: `lxctool --help` loads no stack code

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
    import json  # lazy: `lxctool --help` loads no stack code

    from lxctool.stacks.up import changes, prepare, stack_plan

    prep = prepare(app.lxd, stack_file, app.caps)
    ops = stack_plan(prep)
    if fmt == "json":
        emit(json.dumps([{"kind": d["kind"], "target": d["target"],
                          "detail": {**d["detail"], **({"reason": d["reason"]} if d["reason"] else {})}}
                         for d in (op.as_dict() for op in ops)], indent=2))
    else:
        emit("\n".join(prep.secrets.mask(op.describe()) for op in ops))
        _say(f"{len(changes(ops))} change(s), {len(ops) - len(changes(ops))} up to date")
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
    from lxctool.report.render import render  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage
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

            _say(ensure_for(lxd if done else None, prep.stack, prep.state.records))
    writes = sum(n for method, n in counter.items() if method != "GET")
    _say(f"{len(done)} change(s); LXD requests: {dict(sorted(counter.items()))} ({writes} writes)")
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
    from lxctool.stacks import manage, monitor  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks.lock import stack_lock

    name = manage.stack_name(stack_file)
    _interruptible()
    with stack_lock(name, "down"):
        if monitor.stop(name):
            _say(f"stopped the monitor of {name}")
        removed = manage.down(app.lxd, name, volumes, parallel)
    from lxctool.stacks.lock import forget  # lazy: `lxctool --help` loads no stack code

    forget(name)
    _say(f"removed {len(removed)} object(s) of stack {name}" if removed else f"stack {name} has nothing to remove")


@click.command()
@file_option
@click.option("--no-health", is_flag=True, help="Skip the health probes (only the one batched read).")
@format_option
@pass_app
def ps(app: App, stack_file: Path, no_health: bool, fmt: str) -> None:
    """Each replica: state, member, IPv4, health, limits, CPU and memory use against the limit."""
    from lxctool.report.render import render  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage, monitor
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
    from lxctool.core.errors import SpecError  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack

    stack = load_stack(stack_file)
    names = manage.replicas(app.lxd, stack, [service])
    svc = stack.service(service.partition("/")[0])
    rc = 0
    for name in names[:1] if follow else names:
        if len(names) > 1 and not follow:
            _say(f"== {name} ==")
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
    from lxctool.report.render import render  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks.manage import stack_list as rows

    emit(render(rows(app.lxd), ["name", "state", "containers", "running", "services"], fmt))


def _exec_stack(app: App, stack_file: Path, name: str | None, command: tuple[str, ...], env: tuple[str, ...]) -> int:
    from lxctool.core.errors import SpecError  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack

    if not name:
        raise SpecError("SERVICE: give SERVICE or SERVICE/N, then -- COMMAND")
    stack = load_stack(stack_file)
    target = manage.replicas(app.lxd, stack, [name if "/" in name else f"{name}/1"])[0]
    return app.lxd.exec_stream(target, list(command), dict(e.split("=", 1) for e in env if "=" in e))


def _restart_stack(app: App, stack_file: Path, names: tuple[str, ...], force: bool, fmt: str) -> None:
    from lxctool.report.render import render  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack

    stack = load_stack(stack_file)
    for target in manage.replicas(app.lxd, stack, list(names)):
        _say(f"restarting {target}")
        app.lxd.set_state(target, "restart", force=force)
    emit(render(manage.ps_rows(app.lxd, stack, probe=False), ["name", "service", "state", "ipv4"], fmt))


def _verify_stack(app: App, stack_file: Path, name: str | None, only: str | None, duration: float, fmt: str) -> int:
    from lxctool.report.render import render  # lazy: `lxctool --help` loads no stack code
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack
    from lxctool.verify import runner as core

    stack = load_stack(stack_file)
    kinds = core.parse_only(only)
    targets = manage.replicas(app.lxd, stack, [name] if name else [])
    contexts = [core.context(app.lxd, t, duration, app.caps) for t in targets]  # all refused first
    rows = []
    failing = False
    for ctx in contexts:
        findings = core.run(ctx, kinds)
        failing = failing or core.any_failing(findings)
        rows += [{"name": ctx.name, **f.row()} for f in findings]
    cols = ["name"] + core.COLUMNS
    emit(render(rows, cols if fmt == "table" else cols + ["configured_value", "measured_value", "unit"], fmt,
                data={"stack": stack.name, "findings": rows}))
    if failing:
        raise CheckFailed(f"{stack.name}: a limit is not enforced or unsupported")
    return 0


def _accept_stack_file(cmd: click.Command, handler: Callable[..., Any], argument: str) -> None:
    """Give an existing container command `-f FILE`: its NAME argument then names services."""
    original = cmd.callback
    assert original is not None
    cmd.params[0:0] = [click.Option(["-f", "--file", "stack_file"], type=FILE, default=None, metavar="FILE",
                                    callback=_read_options,
                                    help="A stack or compose file: NAME is then SERVICE or SERVICE/N."),
                       *compose_flags()]
    for param in cmd.params:
        if isinstance(param, click.Argument) and param.name == argument:
            param.required = False

    def callback(stack_file: Path | None = None, **kw: Any) -> Any:
        ctx = click.get_current_context()
        if stack_file is not None:
            return handler(ctx.find_object(App), stack_file, **kw)
        if not kw.get(argument):  # one `lxctool: error: FIELD: ...` line, like every refusal (exit 2)
            from lxctool.core.errors import SpecError  # lazy: like this module's other error imports

            label = next((p.metavar or argument.upper() for p in cmd.params
                          if isinstance(p, click.Argument) and p.name == argument), argument.upper())
            raise SpecError(f"{label}: missing; give it, or -f FILE for a stack's services")
        return original(**kw)

    cmd.callback = callback


def register(group: click.Group) -> None:
    """Add the stack commands; teach exec, restart and verify `-f FILE` (registered before us)."""
    for cmd in (plan, up, down, ps, logs, stack_group):
        group.add_command(cmd)
    for cmd_name, handler, argument in (("exec", _exec_stack, "name"), ("restart", _restart_stack, "names"),
                                        ("verify", _verify_stack, "name")):
        if cmd_name in group.commands:
            _accept_stack_file(group.commands[cmd_name], handler, argument)
