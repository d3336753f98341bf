"""verify on the NIC: rates to and from a temporary peer, a removed shaper, and Ctrl-C cleanup."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from conftest import lxctool_bin, run_cli, verify_findings


def _peers(lxd) -> list[str]:
    return [i["name"] for i in lxd.instances_full() if i["name"].startswith("vf-peer-")]


@pytest.mark.integration
def test_ingress_and_host_side_egress_are_enforced_then_a_removed_shaper_is_not(lxd, containers) -> None:
    name, _ = containers.launch("--net-in", "20Mbit", "--net-out", "10Mbit")
    proc = run_cli("verify", name, "--only", "net", "--duration", "3", "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = verify_findings(proc)
    assert rows["eth0.limits.ingress"]["verdict"] == "ENFORCED"
    assert 20 * 0.85 <= rows["eth0.limits.ingress"]["measured_value"] <= 20 * 1.15
    assert rows["eth0.limits.egress"]["verdict"] == "ENFORCED"
    assert rows["eth0.limits.egress"]["configured"] == "10Mbit (host-side)"
    assert 10 * 0.85 <= rows["eth0.limits.egress"]["measured_value"] <= 10 * 1.15
    assert "tx_bytes +" in rows["eth0.limits.ingress"]["evidence"]
    peer = proc.stderr.split("starting peer container ")[1].split()[0]
    assert lxd.instance(peer) is None
    # take the htb off the container's veth behind LXD's back: ingress is no longer limited
    veth = lxd.instance_state(name)["network"]["eth0"]["host_name"]
    subprocess.run(["tc", "qdisc", "del", "dev", veth, "root"], check=True)
    proc = run_cli("verify", name, "--only", "net", "--duration", "2", "--format", "json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    rows = verify_findings(proc)
    assert rows["eth0.limits.ingress"]["verdict"] == "NOT ENFORCED"
    assert rows["eth0.limits.ingress"]["measured_value"] > 23
    assert rows["eth0.limits.egress"]["verdict"] == "ENFORCED"


@pytest.mark.integration
def test_ctrl_c_removes_the_peer_and_the_workload(lxd, containers) -> None:
    name, _ = containers.launch("--net-in", "20Mbit")
    proc = subprocess.Popen([lxctool_bin(), "verify", name, "--only", "net", "--duration", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    deadline = time.monotonic() + 60
    while "receiving from" not in err and time.monotonic() < deadline:
        err += proc.stderr.readline()
    assert "receiving from" in err, err
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    peer = err.split("starting peer container ")[1].split()[0]
    assert proc.returncode == 130, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert lxd.instance(peer) is None
    ps = lxd.exec(name, ["ps", "-o", "comm"]).stdout.split()[1:]
    assert sorted(set(ps) - {"ps"}) == ["init", "udhcpc"], ps
