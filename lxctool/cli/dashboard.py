"""`dashboard`: a live web page of the host and its containers against their limits."""

from __future__ import annotations

import click

from lxctool.cli import App
from lxctool.cli import pass_app


def _say(message: str) -> None:
    click.echo(f"lxctool: {message}", err=True)


@click.command()
@click.option("--listen", default="127.0.0.1:8888", show_default=True, metavar="ADDRESS:PORT",
              envvar="LXCTOOL_DASHBOARD_LISTEN",
              help="Where to serve. Any address but 127.0.0.1, ::1 or localhost requires the token "
                   "(kept in /var/lib/lxctool/dashboard.token). Port 0 picks a free port.")
@click.option("-f", "--file", "stack_files", multiple=True, metavar="STACK",
              help="Stack or compose file(s): adds expected replicas, secret names (masked) and "
                   "health checks (tcp, http and command, run every 5 s as `lxctool ps -f` runs them).")
@click.option("--window", default=300, show_default=True, metavar="N",
              type=click.IntRange(10, 3600), help="Samples (seconds) kept for the charts.")
@pass_app
def dashboard(app: App, listen: str, stack_files: tuple[str, ...], window: int) -> None:
    """Serve a live, read-only web page: containers, their use against limits, health, verify.

    \b
    One sampler (compare's measurements, one LXD request per second) feeds every browser:
      /             the page (table, charts with dashed limit lines, process attribution)
      /api/samples  the rolling window as JSON (compare --format json field names)
      /ws           a WebSocket pushing each new sample
      /metrics      Prometheus text (counters *_total, base units)
    With -f, one background worker runs the stack's health checks every 5 s, apart from samples.
    Ctrl-C or SIGTERM stops it (exit 0).
    Examples:
      lxctool dashboard                         # http://127.0.0.1:8888/
      lxctool dashboard -f examples/mediawiki/stack.yaml
      lxctool dashboard --listen 0.0.0.0:8888   # prints the URL with its token once
    """
    # lazy: the dashboard's modules cost ~10 ms (auth) to ~0.2 s (starlette, uvicorn), not paid by --help
    from lxctool.dashboard.auth import ensure_token, needs_token, parse_listen, token_file
    from lxctool.dashboard.inventory import load_stacks

    host, port = parse_listen(listen)
    stacks = load_stacks(stack_files)
    app.lxd.ping()  # a daemon that is down is said now, not in the page
    # lazy: starlette, uvicorn and websockets are imported only here, after the daemon answered
    from lxctool.dashboard.app import create_app
    from lxctool.dashboard.hub import Hub
    from lxctool.dashboard.server import bind, serve

    sock = bind(host, port)
    token = None
    if needs_token(host):
        token, _created = ensure_token(token_file())
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/" + (f"?token={token}" if token else "")

    def ready() -> None:
        _say(f"dashboard on {url}  (read-only; Ctrl-C stops)")

    serve(create_app(Hub(app.lxd, stacks, window=window), token), sock, ready)
    _say("dashboard stopped")


def register(group: click.Group) -> None:
    """Add dashboard to the lxctool group."""
    group.add_command(dashboard)
