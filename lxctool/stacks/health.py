"""Health checks of a replica: a command inside it, or HTTP / TCP from the host to its address
(its own bridge only, which lxctool created: the network safety rule)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Callable

from lxctool.core.errors import LxctoolError
from lxctool.lxd.client import Lxd, ipv4_addresses
from lxctool.stacks.model import Healthcheck


@dataclass(frozen=True)
class Probe:
    """One probe's outcome."""

    healthy: bool
    output: str


def probe_once(lxd: Lxd, name: str, hc: Healthcheck, ipv4: str | None = None) -> Probe:
    """Run the check once."""
    if hc.command:
        try:
            res = lxd.exec(name, list(hc.command), timeout=hc.timeout)
        except LxctoolError as exc:
            return Probe(False, exc.message)
        out = (res.stdout + res.stderr).strip()[-400:]
        return Probe(res.exit_code == 0, f"exit {res.exit_code}" + (f": {out}" if out else ""))
    ip = ipv4 or next(iter(ipv4_addresses(lxd.instance_state(name))), None)
    if ip is None:
        return Probe(False, "no IPv4 address yet")
    if hc.http_port is not None:
        return _http(ip, hc)
    return _tcp(ip, int(hc.tcp_port or 0), hc.timeout)


def _http(ip: str, hc: Healthcheck) -> Probe:
    """GET over a plain TCP connection: one request to a container, no proxy, no HTTP library."""
    url = f"http://{ip}:{hc.http_port}{hc.http_path}"
    request = f"GET {hc.http_path} HTTP/1.0\r\nHost: {ip}\r\nUser-Agent: lxctool-health\r\n\r\n".encode()
    try:
        with socket.create_connection((ip, int(hc.http_port or 80)), timeout=hc.timeout) as conn:
            conn.sendall(request)
            head = conn.makefile("rb").readline(200).decode(errors="replace").split()
    except OSError as exc:
        return Probe(False, f"GET {url}: {exc.strerror or exc}")
    if len(head) < 2 or not head[0].startswith("HTTP/") or not head[1].isdigit():
        return Probe(False, f"GET {url}: not an HTTP answer ({' '.join(head)[:80]!r})")
    status = int(head[1])
    return Probe(status == hc.http_status, f"GET {url} -> {status} (want {hc.http_status})")


def _tcp(ip: str, port: int, timeout: float) -> Probe:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return Probe(True, f"tcp {ip}:{port} accepts")
    except OSError as exc:
        return Probe(False, f"tcp {ip}:{port}: {exc.strerror or exc}")


def wait_healthy(lxd: Lxd, name: str, hc: Healthcheck, ipv4: str | None = None,
                 stop: Callable[[], bool] = lambda: False) -> Probe:
    """Probe every interval until healthy or retries are used up; the last probe."""
    if hc.start_period:
        time.sleep(hc.start_period)
    last = Probe(False, "not probed")
    for attempt in range(hc.retries):
        if stop():
            return Probe(False, "interrupted")
        last = probe_once(lxd, name, hc, ipv4)
        if last.healthy:
            return last
        if attempt + 1 < hc.retries:
            time.sleep(hc.interval)
    return last
