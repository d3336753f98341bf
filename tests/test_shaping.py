"""Integration: NIC rate limits in both directions, measured by real transfers between containers.

Ingress is LXD's htb on the host-side veth; egress is host-side IFB shaping (tc police is
missing here), re-applied by the start-host hook after a reboot from inside the container.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from test_network_lab import Lab, lab  # noqa: F401  (fixture)

from lxctool.host import shaping as netshape

pytestmark = pytest.mark.integration

SIZE = 6 * 1024 * 1024  # 6 MiB: about 5 s at 10 Mbit/s
LIMIT = 10_000_000


def serve(lxd: Any, name: str) -> None:
    res = lxd.exec(name, ["sh", "-c", f"dd if=/dev/urandom of=/tmp/f bs={SIZE} count=1 2>/dev/null && "
                                      "cd /tmp && httpd -p 8000 -h /tmp"])
    assert res.exit_code == 0, res.stderr


def rate(lxd: Any, client: str, server_ip: str) -> float:
    """Bits per second of one HTTP download by client from server_ip."""
    t0 = time.monotonic()
    res = lxd.exec(client, ["sh", "-c", f"wget -q -O - http://{server_ip}:8000/f | wc -c"], timeout=120)
    dt = time.monotonic() - t0
    assert res.exit_code == 0 and res.stdout.strip() == str(SIZE), (res.stdout, res.stderr)
    return SIZE * 8 / dt


def ip_of(lxd: Any, name: str) -> str:
    return next(a["address"] for a in lxd.instance_state(name)["network"]["eth0"]["addresses"]
                if a["family"] == "inet")


def egress_row(name: str) -> dict[str, Any]:
    rows = json.loads(run_cli("info", name, "--format", "json", check=True).stdout)["limits"]
    return {r["limit"]: r for r in rows}


def assert_limited(measured: float, what: str) -> None:
    assert abs(measured - LIMIT) <= 0.15 * LIMIT, f"{what}: {measured / 1e6:.2f} Mbit/s, want 10 +-15%"


def test_ten_mbit_each_way_and_after_reboot(lab: Lab, containers: Any, lxd: Any) -> None:
    net, _ = lab.network("s")
    lim, row = containers.launch("--network", net, "--net-in", "10Mbit", "--net-out", "10Mbit", tag="lim")
    peer, _ = containers.launch("--network", net, tag="peer")
    ctl, _ = containers.launch("--network", net, tag="ctl")
    for c in (lim, peer, ctl):
        serve(lxd, c)
    lim_ip, peer_ip = ip_of(lxd, lim), ip_of(lxd, peer)

    into = rate(lxd, lim, peer_ip)      # traffic into the limited container
    out = rate(lxd, peer, lim_ip)       # traffic leaving it
    control = rate(lxd, ctl, peer_ip)   # two unlimited containers
    print(f"into {into / 1e6:.2f}, out {out / 1e6:.2f}, control {control / 1e6:.1f} Mbit/s")
    assert_limited(into, "into")
    assert_limited(out, "out of")
    assert control >= 3 * max(into, out), f"control {control / 1e6:.1f} Mbit/s"

    limits = egress_row(lim)
    assert limits["eth0.limits.egress"]["effective"] == LIMIT
    assert "redirected from" in limits["eth0.limits.egress"]["effective_text"]
    assert limits["eth0.limits.ingress"]["effective"] == LIMIT

    veth_before = lxd.instance_state(lim)["network"]["eth0"]["host_name"]
    run_cli("exec", lim, "--", "reboot")
    def back() -> bool:
        st = lxd.instance_state(lim)
        eth0 = (st.get("network") or {}).get("eth0") or {}
        return (st["status"] == "Running" and eth0.get("host_name") not in (None, veth_before)
                and any(a["family"] == "inet" for a in eth0.get("addresses") or []))
    deadline = time.monotonic() + 60
    while not back():
        assert time.monotonic() < deadline, "container did not come back from reboot"
        time.sleep(0.2)
    serve(lxd, lim)
    lim_ip = ip_of(lxd, lim)
    into, out = rate(lxd, lim, peer_ip), rate(lxd, peer, lim_ip)
    print(f"after reboot: into {into / 1e6:.2f}, out {out / 1e6:.2f} Mbit/s")
    assert_limited(into, "into, after reboot")
    assert_limited(out, "out of, after reboot")
    assert egress_row(lim)["eth0.limits.egress"]["effective"] == LIMIT
    ifb = netshape.ifb_name(lim)
    subprocess.run(["lxc", "delete", "--force", lim], check=True)  # removed outside lxctool
    assert Path(f"/sys/class/net/{ifb}").exists()
    run_cli("delete", peer, check=True)  # the next lxctool delete removes the orphaned IFB
    assert not Path(f"/sys/class/net/{ifb}").exists()


def test_live_change_gone_and_delete(lab: Lab, containers: Any, lxd: Any) -> None:
    net, _ = lab.network("g")
    name, _ = containers.launch("--network", net, "--net-out", "10Mbit")
    assert egress_row(name)["eth0.limits.egress"]["effective"] == LIMIT
    run_cli("limits", name, "--net-out", "20Mbit", check=True)
    assert egress_row(name)["eth0.limits.egress"]["effective"] == 2 * LIMIT
    assert lxd.instance(name)["config"][netshape.RATE_KEY] == str(2 * LIMIT)

    veth = lxd.instance_state(name)["network"]["eth0"]["host_name"]
    subprocess.run(["tc", "qdisc", "del", "dev", veth, "ingress"], check=True)
    row = egress_row(name)["eth0.limits.egress"]
    assert row["effective"] is None and row["effective_text"].startswith("GONE")
    run_cli("limits", name, "--net-out", "20Mbit", check=True)  # the same rate again puts it back
    assert egress_row(name)["eth0.limits.egress"]["effective"] == 2 * LIMIT

    ifb = netshape.ifb_name(name)
    assert Path(f"/sys/class/net/{ifb}").exists()
    run_cli("delete", name, check=True)
    assert not Path(f"/sys/class/net/{ifb}").exists()


def test_net_out_from_a_profile_file(lab: Lab, containers: Any, lxd: Any, tmp_path: Path,
                                     run_prefix: str) -> None:
    net, _ = lab.network("p")
    stem = f"{run_prefix}-shaped"
    (tmp_path / f"{stem}.yaml").write_text("description: shaped egress\nnet-out: 10Mbit\n")
    name = containers.name()
    try:
        run_cli("launch", name, "--network", net, "--profile", stem, check=True,
                env={"LXCTOOL_PROFILES_DIR": str(tmp_path)})
        prof = lxd.profile(lxd.instance(name)["profiles"][-1])
        assert prof["name"].startswith(f"lxctool-{stem}-")
        assert "limits.egress" not in prof["devices"].get("eth0", {})  # LXD cannot police here
        assert prof["config"][netshape.RATE_KEY] == str(LIMIT)
        assert egress_row(name)["eth0.limits.egress"]["effective"] == LIMIT
    finally:
        containers.cleanup()
        containers.names.clear()
        for prof in lxd.profiles():
            if prof["name"].startswith(f"lxctool-{stem}-"):
                lxd.delete_profile(prof["name"])
