"""`net check`: derive the reachability a layout implies and prove it with probes.

Every "unreachable" expectation carries a positive control made with the same probe tool
(the source reaches its own gateway listener, the host reaches the target), so a missing
tool or a dead target cannot pass for isolation.
"""

from __future__ import annotations

import http.server
import ipaddress
import shlex
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lxctool.core.errors import SpecError, Unsupported
from lxctool.host import run as host
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Network
from lxctool.net import network as netmod
from lxctool.report.progress import progress

PROBES = ("icmp", "tcp")
PROBE_PORT = 8473          # the TCP port the check's temporary listeners use in containers
PROBE_DIR = "/tmp/lxctool-probe"


@dataclass
class Member:
    """A running container and its address on each network of the check."""

    name: str
    addrs: dict[str, str]          # network -> IPv4


@dataclass
class Probe:
    """One probe to run: from a container (or 'host') to an address."""

    source: str
    target: str
    addr: str
    probe: str
    expected: str
    port: int = PROBE_PORT
    net: str | None = None         # the target address's network (None: outside)


def layout(lxd: Lxd, names: list[str]) -> tuple[list[dict[str, Any]], list[Member]]:
    """The networks checked (named, else every lxctool network) and their running members."""
    nets = [netmod.require_network(lxd, n) for n in names] if names else \
        [n for n in lxd.networks() if netmod.is_lxctool(n)]
    instances = lxd.instances_full()
    by_name: dict[str, Member] = {}
    for net in nets:
        for m in netmod.members(lxd, net["name"], instances):
            if m["state"] == "RUNNING" and m["ipv4"]:
                by_name.setdefault(m["name"], Member(m["name"], {})).addrs[net["name"]] = m["ipv4"][0]
    return nets, sorted(by_name.values(), key=lambda m: m.name)


def expected_probes(nets: list[dict[str, Any]], members: list[Member], outside: list[str]) -> list[Probe]:
    """The reachability the layout implies, as probes (pure: no I/O)."""
    isolated = {v.name: v.isolated for v in map(Network, nets)}
    out = []
    for probe in PROBES:
        for a in members:
            for b in members:
                if a is b:
                    continue
                for net, addr in sorted(b.addrs.items()):
                    same = net in a.addrs
                    cut = isolated.get(net, False) or any(isolated.get(n, False) for n in a.addrs)
                    exp = "reachable" if same or not cut else "unreachable"
                    out.append(Probe(a.name, f"{b.name} ({addr})", addr, probe, exp, net=net))
            for addr in outside:
                if a.addrs and all(isolated.get(n, False) for n in a.addrs):
                    out.append(Probe(a.name, f"outside ({addr})", addr, probe, "unreachable"))
        for b in members:
            for net, addr in sorted(b.addrs.items()):
                out.append(Probe("host", f"{b.name} ({addr})", addr, probe, "reachable", net=net))
    return out


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: Any) -> None:
        pass


def _host_listener(addr: str) -> tuple[http.server.HTTPServer, int]:
    srv = http.server.HTTPServer((addr, 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def _host_probe(probe: str, addr: str, port: int, timeout: float) -> bool:
    if probe == "icmp":
        return host.succeeds(["ping", "-n", "-q", "-c", "1", "-W", str(max(1, int(timeout))), addr])
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n".encode())
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False


def _container_probe(lxd: Lxd, source: str, probe: str, addr: str, port: int, timeout: float) -> bool:
    t = str(max(1, int(timeout)))
    if probe == "icmp":
        argv = ["ping", "-c", "1", "-W", t, addr]
    else:  # any HTTP answer (even an error status) proves the TCP path both ways
        # busybox 1.35's `wget -T` crashes here (SIGSEGV), so `timeout` bounds the wait
        url = shlex.quote(f"http://{addr}:{port}/")
        argv = ["sh", "-c", f"timeout {t} wget -q -O - {url} 2>&1 >/dev/null; echo rc=$?"]
    res = lxd.exec(source, argv, timeout=timeout + 10)
    if probe == "icmp":
        return res.exit_code == 0
    return "rc=0" in res.stdout or "HTTP/" in res.stdout


def run_check(lxd: Lxd, names: list[str], outside: list[str], timeout: float = 2.0) -> list[dict[str, Any]]:
    """Run every probe the layout implies plus positive controls; one row per probe."""
    if not lxd.is_local:
        raise Unsupported(f"net check: {lxd.where}: the probes run from this host and inside the "
                          "containers on bridges of this machine; run it on the remote machine itself")
    bad = []
    for addr in outside:
        host, _, port_text = addr.partition(":")
        try:
            ipaddress.IPv4Address(host)
            if port_text and not 0 < int(port_text) < 65536:
                raise ValueError
        except ValueError:
            bad.append(f"--outside: {addr!r} is not ADDR or ADDR:PORT; use an IPv4 address such as 10.250.0.2")
    if bad:
        raise SpecError(bad)
    nets, members = layout(lxd, names)
    gateways = {v.name: str(v.ipv4_interface.ip) for v in map(Network, nets) if v.ipv4_interface}
    probes = expected_probes(nets, members, [a.split(":")[0] for a in outside])
    ports = {a.split(":")[0]: int(a.split(":")[1]) for a in outside if ":" in a}
    if not probes:  # refused before any listener starts (exit 2: no check ran, see cli/network.py)
        from lxctool.core.errors import PreflightError  # lazy: only this path needs it

        raise PreflightError("NETWORK: nothing to check: no running containers on "
                             f"{', '.join(names) or 'any lxctool network'}; launch some first")
    servers = {net: _host_listener(gw) for net, gw in gateways.items()}
    pids = _start_listeners(lxd, [m.name for m in members])
    local = threading.local()

    def client() -> Lxd:
        if not hasattr(local, "lxd"):
            local.lxd = Lxd(lxd.socket_path, lxd.project)
        return local.lxd

    def run(source: str, probe: str, addr: str, port: int) -> bool:
        if source == "host":
            return _host_probe(probe, addr, port, timeout)
        return _container_probe(client(), source, probe, addr, port, timeout)

    try:
        jobs: dict[tuple[str, str, str, int], Any] = {}
        with ThreadPoolExecutor(max_workers=8) as pool:
            def submit(source: str, probe: str, addr: str, port: int) -> tuple[str, str, str, int]:
                key = (source, probe, addr, port)
                if key not in jobs:
                    jobs[key] = pool.submit(run, *key)
                return key

            plan = []
            for p in probes:
                port = ports.get(p.addr, PROBE_PORT)
                main = submit(p.source, p.probe, p.addr, port)
                controls = []
                if p.expected == "unreachable":
                    src = next(m for m in members if m.name == p.source)
                    net = sorted(src.addrs)[0]
                    controls = [(f"{p.source}->gateway", submit(p.source, p.probe, gateways[net], servers[net][1])),
                                ("host->target", submit("host", p.probe, p.addr, port))]
                plan.append((p, main, controls))
            rows = []
            for p, main, controls in plan:
                observed = "reachable" if jobs[main].result() else "unreachable"
                failed = [label for label, key in controls if not jobs[key].result()]
                control = ("-" if not controls else "ok" if not failed else "FAILED " + ",".join(failed))
                verdict = ("MISMATCH" if observed != p.expected else "INCONCLUSIVE" if failed else "ok")
                rows.append({"source": p.source, "target": p.target, "probe": p.probe, "expected": p.expected,
                             "observed": observed, "control": control, "verdict": verdict})
    finally:
        from lxctool.host.signals import deferred  # lazy: only this path needs it

        with deferred():  # the whole cleanup in one piece: a held signal is delivered after it
            for srv, _port in servers.values():
                srv.shutdown()
                srv.server_close()
            _stop_listeners(lxd, pids)
    return rows


def _start_listeners(lxd: Lxd, names: list[str]) -> dict[str, str]:
    """A temporary busybox httpd on PROBE_PORT in each container; {name: pid}."""
    from lxctool.apply import gc  # lazy: only this path needs it
    from lxctool.host import owner  # lazy: only this path needs it

    gc.reclaim(lxd, ("process",), progress)  # a killed check's httpd would hold PROBE_PORT
    pids = {}
    for name in names:
        d = shlex.quote(PROBE_DIR)
        res = lxd.exec(name, ["sh", "-c", f"mkdir -p {d} && echo ok > {d}/index.html && "
                              f"(httpd -f -p {PROBE_PORT} -h {d} >/dev/null 2>&1 </dev/null & echo $!)"],
                       env={owner.ENV_KEY: owner.token()})  # `lxctool gc` finds it after kill -9
        if res.exit_code == 0 and res.stdout.strip().isdigit():
            pids[name] = res.stdout.strip()
    return pids


def _stop_listeners(lxd: Lxd, pids: dict[str, str]) -> None:
    from lxctool.host.signals import deferred  # lazy: only this path needs it

    with deferred():  # a signal mid-loop would leave listeners behind: delivered after the loop
        _kill_listeners(lxd, pids)


def _kill_listeners(lxd: Lxd, pids: dict[str, str]) -> None:
    for name, pid in pids.items():
        try:
            lxd.exec(name, ["kill", pid])
        except Exception:  # noqa: BLE001 - the container may have stopped meanwhile
            pass
