"""Health checks of a replica: a command inside it, or HTTP / TCP from the host to its address
(its own bridge only, which lxctool created: the network safety rule)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
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
    url = f"http://{ip}:{hc.http_port}{hc.http_path}"
    # no proxy: the address is a container on an lxctool bridge, never anything else
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=hc.timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return Probe(False, f"GET {url}: {getattr(exc, 'reason', exc)}")
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
