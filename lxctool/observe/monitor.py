"""`monitor`: push compare samples to InfluxDB (1.x HTTP API) until stopped.

A server unreachable at start is an error; one that goes away later costs a warning per failed
push, the points are kept (up to MAX_QUEUED lines) and sent when it answers again.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

from lxctool.observe.compare import samples
from lxctool.core.errors import LxctoolError, SpecError
from lxctool.core.redact import redact_text, redact_url, split_credentials
from lxctool.report.export import influx_lines
from lxctool.lxd.client import Lxd

MAX_QUEUED = 100_000
URL_ACCEPTED = "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8086"


class InfluxError(LxctoolError):
    """InfluxDB did not answer or refused a request."""

    exit_code = 1


def parse_url(url: str) -> str:
    """Validate an InfluxDB base URL; return it without a trailing slash."""
    parsed = urllib.parse.urlsplit(url.strip())
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SpecError(f"--influx-url: {redact_url(url)!r} has an invalid port; use {URL_ACCEPTED}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise SpecError(f"--influx-url: {redact_url(url)!r} is not a valid URL; use {URL_ACCEPTED}")
    return url.strip().rstrip("/")


def check_database(name: str) -> str:
    """A database name InfluxDB accepts without quoting surprises."""
    if not name or not all(ch.isalnum() or ch in "_-" for ch in name):
        raise SpecError(f"--database: {name!r} is not a database name; use letters, digits, _ and -")
    return name


class Influx:
    """A tiny InfluxDB 1.x client over urllib: ping, create database, write, query."""

    def __init__(self, url: str, database: str, timeout: float = 5.0) -> None:
        # user:password from the URL become a Basic auth header (InfluxDB 1.x accepts it), so the
        # URL kept and shown everywhere holds no secret
        self.url, credentials = split_credentials(parse_url(url))
        self._auth = None
        if credentials is not None:
            import base64  # lazy: only this path needs it

            self._auth = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
        self.database = check_database(database)
        self.timeout = timeout

    def _request(self, path: str, params: dict[str, str], data: bytes | None = None) -> bytes:
        req = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", data=data,
                                     method="POST" if data is not None else "GET")
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()[:200]
            raise InfluxError(f"InfluxDB at {self.url} refused {path}: HTTP {exc.code} {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InfluxError(f"InfluxDB at {self.url} is not answering ({redact_text(str(reason))})") from None

    def ping(self) -> None:
        """Raise InfluxError unless the server answers /ping."""
        self._request("/ping", {})

    def create_database(self) -> None:
        """CREATE DATABASE (a no-op when it exists)."""
        self._request("/query", {"q": f'CREATE DATABASE "{self.database}"'}, data=b"")

    def write(self, lines: list[str]) -> None:
        """Write line-protocol points (nanosecond timestamps)."""
        self._request("/write", {"db": self.database, "precision": "ns"}, data="\n".join(lines).encode())

    def query(self, q: str) -> bytes:
        """Run an InfluxQL query against the database; the JSON answer."""
        return self._request("/query", {"db": self.database, "q": q})


@dataclass
class MonitorStats:
    """What a monitor run did."""

    samples: int = 0
    points_sent: int = 0
    failed_pushes: int = 0
    queued: int = 0


def run(lxd: Lxd, influx: Influx, names: list[str] | None, interval: float, count: int | None,
        warn: Callable[[str], None], info: Callable[[str], None]) -> MonitorStats:
    """Sample every interval and push; exit only after count samples or on KeyboardInterrupt."""
    try:
        influx.ping()
        influx.create_database()
    except InfluxError as exc:
        raise InfluxError(exc.message, hint="start InfluxDB, or point --influx-url at it") from None
    info(f"pushing samples every {interval:g}s to {influx.url} database {influx.database} (Ctrl-C stops)")
    stats = MonitorStats()
    queue: list[str] = []
    failing = False
    try:
        for data in samples(lxd, names, interval, count):
            stats.samples += 1
            queue.extend(influx_lines(data))
            if len(queue) > MAX_QUEUED:
                del queue[: len(queue) - MAX_QUEUED]
            try:
                influx.write(queue)
            except InfluxError as exc:
                stats.failed_pushes += 1
                failing = True
                warn(f"push failed: {exc.message}; keeping {len(queue)} points to resend, still sampling")
                continue
            if failing:
                info(f"InfluxDB answers again: sent {len(queue)} queued points")
                failing = False
            stats.points_sent += len(queue)
            queue.clear()
    except KeyboardInterrupt:
        pass
    stats.queued = len(queue)
    return stats
