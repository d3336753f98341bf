"""Traffic-control state on host-side veths: what shaping is really in place for a NIC."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from . import units


def _tc_json(*args: str) -> list[dict[str, Any]]:
    if not shutil.which("tc"):
        return []
    proc = subprocess.run(["tc", "-j", *args], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return []


def htb_rate_bits(dev: str) -> int | None:
    """The rate of the first htb class on dev, in bits per second (None when there is none)."""
    for cls in _tc_json("class", "show", "dev", dev):
        if cls.get("class") == "htb":
            rate = (cls.get("options") or cls).get("rate")
            if isinstance(rate, (int, float)):
                return int(rate) * 8  # tc -j reports bytes per second
    return None


def effective_rate(veth: str | None, direction: str) -> tuple[int | None, str, str | None]:
    """(bits/s, text, source) of the shaping in place for a container's ingress or egress."""
    if veth is None:
        return None, "no host-side veth (not running)", None
    if direction == "ingress":
        rate = htb_rate_bits(veth)
        if rate is None:
            return None, "no shaping on the host-side veth", f"tc class show dev {veth}"
        return rate, f"htb {units.format_bit_rate(rate)} on {veth}", f"tc class show dev {veth}"
    policed = [f for f in _tc_json("filter", "show", "dev", veth, "ingress")
               if "police" in json.dumps(f)]
    if policed:
        return None, f"police filter on {veth} ingress", f"tc filter show dev {veth} ingress"
    return None, "no shaping for traffic leaving the container", f"tc filter show dev {veth} ingress"
