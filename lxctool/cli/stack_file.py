"""-f FILE for stack commands: the option that reads a stack or compose file, and -f FILE taught
to the container commands exec, restart and verify (NAME then names SERVICE or SERVICE/N)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.core.errors import CheckFailed, SpecError
from lxctool.report.progress import progress
from lxctool.report.render import render

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


def _exec_stack(app: App, stack_file: Path, name: str | None, command: tuple[str, ...], env: tuple[str, ...]) -> int:
    # lazy: stack code (~0.3 s with the LXD client), not paid by --help or a plain exec
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack

    if not name:
        raise SpecError("SERVICE: give SERVICE or SERVICE/N, then -- COMMAND")
    stack = load_stack(stack_file)
    target = manage.replicas(app.lxd, stack, [name if "/" in name else f"{name}/1"])[0]
    return app.lxd.exec_stream(target, list(command), dict(e.split("=", 1) for e in env if "=" in e))


def _restart_stack(app: App, stack_file: Path, names: tuple[str, ...], force: bool, fmt: str) -> None:
    # lazy: stack code (~0.3 s with the LXD client), not paid by --help or a plain exec
    from lxctool.stacks import manage
    from lxctool.stacks.load import load_stack

    stack = load_stack(stack_file)
    for target in manage.replicas(app.lxd, stack, list(names)):
        progress(f"restarting {target}")
        app.lxd.set_state(target, "restart", force=force)
    emit(render(manage.ps_rows(app.lxd, stack, probe=False), ["name", "service", "state", "ipv4"], fmt))


def _verify_stack(app: App, stack_file: Path, name: str | None, only: str | None, duration: float, fmt: str) -> int:
    # lazy: stack code (~0.3 s with the LXD client), not paid by --help or a plain exec
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
    name_param: click.Argument | None = None
    name_check = None
    for param in cmd.params:
        if isinstance(param, click.Argument) and param.name == argument:
            param.required = False
            # with -f, NAME is SERVICE[/N], not a container name: check it as one only without -f
            name_param, name_check, param.callback = param, param.callback, None

    def callback(stack_file: Path | None = None, **kw: Any) -> Any:
        ctx = click.get_current_context()
        if stack_file is not None:
            return handler(ctx.find_object(App), stack_file, **kw)
        if name_check is not None and name_param is not None and kw.get(argument):
            name_check(ctx, name_param, kw[argument])
        if not kw.get(argument):  # one `lxctool: error: FIELD: ...` line, like every refusal (exit 2)
            label = next((p.metavar or argument.upper() for p in cmd.params
                          if isinstance(p, click.Argument) and p.name == argument), argument.upper())
            raise SpecError(f"{label}: missing; give it, or -f FILE for a stack's services")
        return original(**kw)

    cmd.callback = callback


def teach_stack_file(group: click.Group) -> None:
    """Give exec, restart and verify (registered before the stack commands) `-f FILE`."""
    for cmd_name, handler, argument in (("exec", _exec_stack, "name"), ("restart", _restart_stack, "names"),
                                        ("verify", _verify_stack, "name")):
        if cmd_name in group.commands:
            _accept_stack_file(group.commands[cmd_name], handler, argument)
