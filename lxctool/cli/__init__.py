"""lxctool's command line: click lives here, and errors become exit codes in one place.

Exit codes (DESIGN.md): 0 done; 1 failed while acting or could not act; 2 refused before any
change; 3 a check found a difference; exec returns the command's own code (125/126/127 when
lxctool could not run it).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any, Callable

import click

from lxctool import __version__
from lxctool.core.errors import LxctoolError, SpecError
from lxctool.report.progress import progress
from lxctool.report.render import render

FORMATS = ("table", "json", "csv")


class App:
    """Shared state of one invocation: the LXD connection and host probe, made on first use."""

    def __init__(self, project: str | None, remote: str | None = None) -> None:
        self.project = project
        self.remote = remote
        self._lxd: Any = None
        self._caps: Any = None

    @property
    def lxd(self) -> Any:
        """The LXD connection: the selected remote over HTTPS, else the local socket; never both."""
        if self._lxd is None:
            from lxctool.lxd import remote as remotes  # lazy: ~35 ms (http.client, ssl), not paid by --help
            from lxctool.lxd.client import Lxd  # lazy: ~35 ms (http.client), not paid by --help

            chosen = remotes.selected(self.remote)
            lxd = Lxd(project=self.project, transport=chosen.transport() if chosen is not None else None)
            if lxd.project is not None:
                lxd.require_project()  # LXD would answer an unknown project with empty lists: exit 2
            self._lxd = lxd
        return self._lxd

    @property
    def caps(self) -> Any:
        """What the daemon's host can enforce, probed once (through the API for a remote)."""
        if self._caps is None and not self.lxd.is_local:
            from lxctool.lxd.remote import RemoteCapabilities  # lazy: only for a remote, not paid by --help

            self._caps = RemoteCapabilities(self.lxd)
        if self._caps is None:
            from lxctool.host.caps import HostCapabilities  # lazy: ~20 ms (subprocess), not paid by --help

            self._caps = HostCapabilities.probe()
        return self._caps


pass_app = click.make_pass_decorator(App)


def _project_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--project is checked against LXD's project name rule before anything else runs."""
    from lxctool.core.names import require  # lazy: not paid by --help

    if value is not None:
        require("project", [value], "--project")
    return value


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--format table|json|csv (LXCTOOL_FORMAT)."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        envvar="LXCTOOL_FORMAT", show_default=True,
                        help="Output: a table for people, json or csv for tools.")(func)


def emit(text: str) -> None:
    """Data goes to stdout."""
    click.echo(text)


def emit_ops(ops: list[Any], fmt: str) -> None:
    """Print planned ops: one line each, or `--format json` a list of op objects."""
    if fmt == "json":
        emit(json.dumps([op.as_dict() for op in ops], indent=2))
    elif fmt == "csv":
        emit(render([{**op.as_dict(), "detail": op.describe()} for op in ops],
                    ["kind", "target", "reason", "detail"], fmt))
    else:
        for op in ops:
            emit(op.describe())


def checked(errors: list[str], parse: Callable[..., Any], *args: Any) -> Any:
    """parse(*args), or None with its SpecError lines added to errors: report every problem at once."""
    try:
        return parse(*args)
    except SpecError as exc:
        errors.extend(exc.errors)
        return None


def _report(exc: LxctoolError) -> None:
    from lxctool.core.redact import redact_text  # lazy: not paid by --help; the last door: no URL password in any error line

    lines = getattr(exc, "errors", None) or [exc.message]
    for line in lines:
        progress(f"error: {redact_text(line)}")
    if exc.hint:
        progress(f"hint: {redact_text(exc.hint)}")


def _field(param: click.Parameter | None) -> str:
    """How the user spells a parameter: its first option name, or an argument's metavar."""
    if param is None:
        return ""
    if isinstance(param, click.Option):
        return param.opts[0]
    return param.metavar or (param.name or "").upper()


def _usage_error(exc: click.UsageError) -> None:
    """click's own refusals (bad choice, unknown option, missing argument) in lxctool's one-line shape."""
    if isinstance(exc, click.MissingParameter):
        line = f"{_field(exc.param)}: missing; it is required" if exc.param else exc.format_message()
    elif isinstance(exc, click.BadParameter) and exc.param is not None:
        line = f"{_field(exc.param)}: {exc.message}"
    elif isinstance(exc, click.NoSuchOption):
        line = f"{exc.option_name}: no such option" + (
            f"; did you mean {', '.join(exc.possibilities)}?" if exc.possibilities else "")
    else:
        line = exc.format_message()
    from lxctool.core.redact import redact_text  # lazy: not paid by --help; click echoes bad option values back

    progress(f"error: {redact_text(line)}")
    if exc.ctx is not None:
        progress(f"hint: see '{exc.ctx.command_path} --help'")


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM become exceptions that unwind through every cleanup (finally) path.

    Installed explicitly: a process started with `&` from a script inherits SIGINT ignored and
    would run on, and Python's default SIGTERM ends the process without any cleanup. After the
    first signal both are ignored, so a second Ctrl-C cannot cut the cleanup short and leave a
    half-removed container (kill -9 still works; `lxctool gc` handles what that leaves).
    """
    import signal  # lazy: not paid by --help
    import threading  # lazy: not paid by --help

    from lxctool.core.errors import Terminated  # lazy: not paid by --help

    if threading.current_thread() is not threading.main_thread():
        return  # CliRunner in a worker thread: signals belong to the main thread

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def quiet_signals() -> None:
    """The command's outcome is decided: a later SIGINT/SIGTERM changes nothing (and shows no
    traceback from the interpreter's shutdown)."""
    import signal  # lazy: not paid by --help
    import threading  # lazy: not paid by --help

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class LxctoolGroup(click.Group):
    """The top-level group; its main() is the one place where errors become exit codes.

    Living in main() (not in a wrapper around it) means click's CliRunner sees exactly what the
    console script does: the same exit codes and the same one-line messages.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Run the command; map expected failures to exit codes without a traceback."""
        if not standalone_mode:  # a caller that handles errors itself gets click's plain behaviour
            return super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        try:
            self._main(args, prog_name, complete_var, **extra)
        finally:
            quiet_signals()

    def _main(self, args: Any, prog_name: str | None, complete_var: str | None, **extra: Any) -> None:
        from lxctool.core.errors import Terminated  # lazy: not paid by --help

        install_signal_handlers()
        try:
            rv = super().main(args=args, prog_name=prog_name or "lxctool", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except (click.exceptions.Abort, KeyboardInterrupt) as exc:
            # click turns KeyboardInterrupt into Abort; the signal is its cause
            term = isinstance(exc, Terminated) or isinstance(exc.__cause__ or exc.__context__, Terminated)
            progress("interrupted" + (" (SIGTERM)" if term else ""))
            sys.exit(143 if term else 130)
        except click.UsageError as exc:
            _usage_error(exc)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except LxctoolError as exc:
            _report(exc)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


# registration order: stacks teaches exec, restart and verify `-f FILE`, so it comes after both
MODULES = ("instances", "doctor", "image", "verify", "compare", "network", "remote", "cluster", "dashboard",
           "stacks", "compose", "gc")
_WITH_STACKS = ("instances", "verify", "stacks")
# the command modules each command needs; a name not listed here loads every module
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    **{name: ("instances",) for name in ("launch", "list", "info", "limits", "delete", "start", "stop")},
    **{name: _WITH_STACKS for name in ("exec", "restart", "verify", "plan", "up", "down", "ps", "logs", "stack")},
    "experiment": ("verify",), "doctor": ("doctor",), "image": ("image",), "compare": ("compare",),
    "monitor": ("compare",), "network": ("network",), "net": ("network",), "remote": ("remote",),
    "cluster": ("cluster",), "dashboard": ("dashboard",), "convert": ("compose",), "gc": ("gc",),
}


class LazyGroup(LxctoolGroup):
    """Imports only the command module(s) a command needs: importing all of them costs every run ~25 ms.

    Reading `.commands` from outside (tests, doc generators) still sees every command.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        self._loading = True  # click's __init__ sets .commands
        self.loaded: list[str] = []
        super().__init__(*args, **kw)
        self._loading = False

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every command (imports every command module)."""
        if not self._loading:
            self.load()
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def load(self, modules: tuple[str, ...] = MODULES) -> None:
        """Import and register these command modules (in MODULES order, each once)."""
        loading, self._loading = self._loading, True
        try:
            for module in MODULES:
                if module in modules and module not in self.loaded:
                    self.loaded.append(module)
                    importlib.import_module(f"lxctool.cli.{module}").register(self)
        finally:
            self._loading = loading

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, after importing the module(s) that define it."""
        self.load(COMMAND_MODULES.get(cmd_name, MODULES))
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name (imports every command module)."""
        self.load()
        return sorted(self._commands)


@click.group(name="lxctool", cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--project", envvar="LXCTOOL_PROJECT", default=None, metavar="NAME", callback=_project_name,
              help="LXD project to work in (default: LXD's default project). Env: LXCTOOL_PROJECT.")
@click.option("--remote", envvar="LXCTOOL_REMOTE", default=None, metavar="NAME",
              help="Remote LXD server to work on (see `lxctool remote`; default: the one chosen "
                   "with `remote switch`, else this machine's daemon). Env: LXCTOOL_REMOTE.")
@click.version_option(__version__, prog_name="lxctool")
@click.pass_context
def cli(ctx: click.Context, project: str | None, remote: str | None) -> None:
    """Provision LXD system containers with cgroup limits, and show what the kernel enforces.

    \b
    Quick start (after scripts/setup-host.sh):
      lxctool launch web1 --cpu 1 --mem 512MB
      lxctool info web1          # configured limits beside the kernel's values
      lxctool list
    Exit codes: 0 done, 1 failed while acting, 2 refused before any change,
    3 a check found a difference.
    """
    ctx.obj = app = App(project, remote)
    if os.environ.get("LXCTOOL_COUNT_REQUESTS") == "1":  # scripts/bench.py: LXD requests per command
        ctx.call_on_close(lambda: click.echo(
            f"lxctool: lxd requests: {app._lxd.requests if app._lxd is not None else 0}", err=True))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `lxctool` console script (see LxctoolGroup.main for the exit codes)."""
    cli.main(args=argv)
