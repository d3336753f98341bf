"""Who may look: loopback needs nothing; any other listen address needs the token, on every
request and on the WebSocket (Authorization: Bearer TOKEN, ?token=TOKEN, or the cookie set by it).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from lxctool.core.errors import SpecError

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
COOKIE = "lxctool_token"
DEFAULT_TOKEN_FILE = "/var/lib/lxctool/dashboard.token"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8888' or '[::1]:8888' -> (host, port); SpecError naming --listen otherwise."""
    how = "use ADDRESS:PORT, e.g. 127.0.0.1:8888 or [::1]:8888 (port 0 picks a free one)"
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SpecError(f"--listen: {text!r} is not an address and port; {how}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise SpecError(f"--listen: {host!r} is not an IP address; {how}") from None
    return host, int(port)


def needs_token(host: str) -> bool:
    """Any address but 127.0.0.1, ::1 and localhost needs the token (127.0.0.2 too: be strict)."""
    return host not in LOOPBACK


def token_file() -> Path:
    """Where the token is kept (LXCTOOL_DASHBOARD_TOKEN_FILE overrides, for tests)."""
    return Path(os.environ.get("LXCTOOL_DASHBOARD_TOKEN_FILE") or DEFAULT_TOKEN_FILE)


def ensure_token(path: Path) -> tuple[str, bool]:
    """The token in path, created (mode 0600) when missing; True when it was created now."""
    try:
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)  # a token others can read is no secret
            return token, False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


def _offered(scope: Scope) -> tuple[str | None, bool]:
    """The token a request offers, and whether it came in the query string."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0], True
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
        return None, False
    return (cookie[COOKIE].value, False) if COOKIE in cookie else (None, False)


class TokenGate:
    """ASGI middleware: 401 unless the request or WebSocket carries the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered, from_query = _offered(scope)
        if offered is None or not hmac.compare_digest(offered.encode(), self.token.encode()):
            await self._refuse(scope, send)
            return
        if scope["type"] == "http" and from_query:
            await self.app(scope, receive, self._with_cookie(send))
        else:
            await self.app(scope, receive, send)

    def _with_cookie(self, send: Send) -> Send:
        """Keep a ?token= in a cookie, so the page's own fetches and WebSocket carry it."""
        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)
        return wrapped

    @staticmethod
    async def _refuse(scope: Scope, send: Send) -> None:
        body = b"401 Unauthorized: give the dashboard token (Authorization: Bearer TOKEN or ?token=TOKEN)\n"
        headers = [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a server without the denial-response extension can only refuse the handshake (403)
            await send({"type": "websocket.close", "code": 1008})
