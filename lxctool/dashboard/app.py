"""The dashboard's Starlette application: the page, its static files, /api/samples, /ws, /metrics.

Read-only: every route is GET (or the WebSocket); nothing here changes LXD or the host.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from lxctool.dashboard.auth import TokenGate
from lxctool.dashboard.hub import Hub
from lxctool.report.export import prometheus_text

STATIC = Path(__file__).parent / "static"
# the page loads nothing from elsewhere: scripts, styles, images and sockets from this server only
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


async def page(request: Request) -> Response:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def api_samples(request: Request) -> Response:
    """The rolling window: each sample is the rows `compare --format json` prints for one sample."""
    return JSONResponse(request.app.state.hub.snapshot(), headers=SECURITY_HEADERS)


async def metrics(request: Request) -> Response:
    """The newest sample in Prometheus text exposition format."""
    return PlainTextResponse(prometheus_text(request.app.state.hub.latest()),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


async def updates(ws: WebSocket) -> None:
    """Push every new sample to this browser until it goes away."""
    hub: Hub = ws.app.state.hub
    await ws.accept()
    queue = hub.subscribe()
    # a receive task notices a closed socket even while no sample is due
    closed = asyncio.ensure_future(ws.receive())
    try:
        while True:
            got = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({got, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                if closed.result()["type"] == "websocket.disconnect":
                    got.cancel()
                    return
                closed = asyncio.ensure_future(ws.receive())  # the page sent something: ignored
            if got in done:
                await ws.send_json(got.result())
            else:
                got.cancel()
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    finally:
        hub.unsubscribe(queue)
        if not closed.done():
            closed.cancel()


def create_app(hub: Hub, token: str | None = None) -> Starlette:
    """The application around one hub; with a token, every request and WebSocket must carry it."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    middleware = [Middleware(TokenGate, token=token)] if token else []  # type: ignore[arg-type]
    # the first fetch holds the whole window (minutes of rows): it shrinks ~10x compressed
    middleware.append(Middleware(GZipMiddleware, minimum_size=2048))
    app = Starlette(routes=[
        Route("/", page), Route("/api/samples", api_samples), Route("/metrics", metrics),
        WebSocketRoute("/ws", updates), Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], middleware=middleware, lifespan=lifespan)
    app.state.hub = hub
    return app

