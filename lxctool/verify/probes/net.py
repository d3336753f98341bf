"""Network: stream to and from a temporary peer container on the same bridge; the rate seen on the
receiver's host-side veth counter must be within 15% of the limit in each limited direction.

Into the container: eth0.limits.ingress (htb on its veth). Out of it: eth0.limits.egress, or
lxctool's host-side shaping (user.lxctool.net-out, an IFB with tbf) where tc police is missing.
The peer is removed in every case, also on Ctrl-C.
"""

from __future__ import annotations

import secrets
import shlex
import time
from pathlib import Path

from lxctool.apply.launch import apply_launch, prepare_launch
from lxctool.core import units
from lxctool.core.spec import LaunchSpec
from lxctool.host.caps import HostCapabilities
from lxctool.lxd.views import Instance
from lxctool.verify.workloads import Background
from lxctool.verify.probes import ENFORCED
from lxctool.verify.probes import NOT_ENFORCED
from lxctool.verify.probes import TOLERANCE
from lxctool.verify.probes import Context
from lxctool.verify.probes import Finding
from lxctool.verify.probes import unsupported

PORT_DOWN, PORT_UP = 5002, 5001
PEER_PREFIX = "vf-peer-"
WARM_UP_S = 1.0
# busybox nc ends at EOF on its stdin: `sleep | nc` keeps a receiving side open
PEER_SERVER = {PORT_DOWN: f"nc -l -p {PORT_DOWN} < /dev/zero",
               PORT_UP: f"sleep 3600 | nc -l -p {PORT_UP} > /dev/null"}


def tx_bytes(veth: str) -> int:
    """Bytes the host sent into a container through its host-side veth."""
    return int(Path(f"/sys/class/net/{veth}/statistics/tx_bytes").read_text())


def _veth(ctx: Context, name: str) -> str:
    return Instance.from_state(name, ctx.lxd.instance_state(name)).host_veth or ""


def _stream(ctx: Context, client: str, receiver_veth: str) -> dict[str, float]:
    """Run client in the container for warm-up + duration; bits/s on the receiver's veth."""
    with Background(ctx.lxd, ctx.name, client, ctx.reader):
        time.sleep(WARM_UP_S)
        b0, t0 = tx_bytes(receiver_veth), time.monotonic()
        time.sleep(ctx.duration)
        b1, t1 = tx_bytes(receiver_veth), time.monotonic()
    return {"bytes": b1 - b0, "seconds": t1 - t0, "bits_per_s": (b1 - b0) * 8 / (t1 - t0)}


def _finding(key: str, configured: str, rate: int, m: dict[str, float], where: str) -> Finding:
    ok = m["bits_per_s"] <= rate * (1 + TOLERANCE)
    evidence = f"{where} tx_bytes +{m['bytes']:.0f} in {m['seconds']:.2f} s"
    if ok and m["bits_per_s"] < rate * (1 - TOLERANCE):
        evidence += "; below the limit: something else was the bottleneck"
    elif not ok:
        evidence += f"; over the limit + {TOLERANCE:.0%}"
    return Finding(key, configured, f"{m['bits_per_s'] / 1e6:.2f} Mbit/s", evidence,
                   ENFORCED if ok else NOT_ENFORCED, rate / 1e6, round(m["bits_per_s"] / 1e6, 3), "Mbit/s",
                   details=m)


def _rate(text: str) -> int:
    return units.parse_bit_rate(text.split()[0])


def probe(ctx: Context) -> list[Finding]:
    """Findings for eth0.limits.ingress and eth0.limits.egress (LXD's or lxctool's host-side)."""
    inbound, outbound = ctx.configured.get("eth0.limits.ingress"), ctx.configured.get("eth0.limits.egress")
    nic = ctx.instance.expanded_devices.get("eth0") or {}
    network = nic.get("network")
    if not network:
        return [Finding(k, v, "-", f"eth0 has no managed network ({nic.get('parent', 'no parent')})",
                        unsupported("the peer container needs a managed bridge"), None, None, "Mbit/s")
                for k, v in (("eth0.limits.ingress", inbound), ("eth0.limits.egress", outbound)) if v]
    from lxctool.apply import gc  # lazy: only this path needs it

    gc.reclaim(ctx.lxd, ("process",), ctx.progress)  # workloads a killed verify left running
    for item in gc.remove(ctx.lxd, gc.containers(ctx.lxd, prefix=PEER_PREFIX)):
        ctx.progress(f"net: removed peer {item.name} left by an interrupted verify ({item.detail})")
    peer = f"{PEER_PREFIX}{secrets.token_hex(3)}"
    ctx.progress(f"net: starting peer container {peer} on {network}")
    findings = []
    servers: list[Background] = []
    try:
        plan = prepare_launch(ctx.lxd, LaunchSpec(name=peer, network=network, timeout=60),
                              HostCapabilities.probe())
        gc.mark_plan(plan.ops, peer)  # marked from its creation on: gc finds it after kill -9
        apply_launch(ctx.lxd, plan)
        peer_ip = Instance.from_state(peer, ctx.lxd.instance_state(peer)).ipv4[0]
        for script in PEER_SERVER.values():  # one by one: each started one is stopped in finally
            servers.append(Background(ctx.lxd, peer, script, ctx.reader).start())
        time.sleep(0.3)
        if inbound:
            ctx.progress(f"net: receiving from {peer} for {ctx.duration:g}s (limit {inbound})")
            m = _stream(ctx, f"sleep 3600 | nc {shlex.quote(peer_ip)} {PORT_DOWN} > /dev/null",
                        _veth(ctx, ctx.name))
            findings.append(_finding("eth0.limits.ingress", inbound, _rate(inbound), m,
                                     f"{ctx.name}'s host-side veth"))
        if outbound:
            ctx.progress(f"net: sending to {peer} for {ctx.duration:g}s (limit {outbound})")
            m = _stream(ctx, f"nc {shlex.quote(peer_ip)} {PORT_UP} < /dev/zero", _veth(ctx, peer))
            findings.append(_finding("eth0.limits.egress", outbound, _rate(outbound), m,
                                     f"peer {peer}'s host-side veth"))
    finally:
        from lxctool.host.signals import deferred  # lazy: only this path needs it

        # the whole cleanup in one piece: a signal held by one step must not skip the next ones
        # (found: SIGINT held while a server stopped, delivered, and the peer stayed RUNNING)
        with deferred():
            for server in servers:
                server.stop()
            # a fresh connection: on Ctrl-C the shared one may be mid-request (CannotSendRequest)
            if not ctx.lxd.remove_instance(peer):
                ctx.progress(f"net: could not remove peer {peer}; `lxctool gc` removes it")
    return findings
