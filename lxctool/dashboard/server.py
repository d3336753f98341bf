"""Serve the dashboard with uvicorn until Ctrl-C or SIGTERM, which end it normally (exit 0)."""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
from typing import Any, Callable, Iterator

import uvicorn

from lxctool.core.errors import PreflightError


class Server(uvicorn.Server):
    """uvicorn's server with lxctool's signal handling.

    SIGINT and SIGTERM are installed explicitly, so a dashboard started with `&` from a script
    (which inherits SIGINT ignored) still stops on Ctrl-C; and a stop by signal is a normal end,
    so the signal is not re-raised after shutdown as uvicorn does (that would exit 130 or -15).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Nothing to do: serve() installed the handlers before it said the server is ready."""
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; PreflightError (exit 2) when the address is taken or foreign."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use; choose another port" if exc.errno == errno.EADDRINUSE else \
            f"cannot be bound ({exc.strerror}); use an address of this host"
        raise PreflightError(f"--listen: {host}:{port} {why}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(app: Any, sock: socket.socket, ready: Callable[[], None] = lambda: None) -> None:
    """Run app on the bound socket until a signal stops it."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", ws="websockets-sansio",
                            ws_ping_interval=20.0)
    server = Server(config)
    # handlers first, then the "ready" line: a signal right after it must still stop us cleanly
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ready()
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
