"""Traffic-control state on host-side veths: what shaping is really in place for a NIC."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

from lxctool.core import units


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


def parse_tc_rate(text: str) -> int | None:
    """A rate as tc prints it ('10Mbit', '500Kbit', '9600bit') in bits per second."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)bit", text.strip(), re.IGNORECASE)
    if not m:
        return None
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * factor)


def htb_rate_bits(dev: str) -> int | None:
    """The rate of the first htb class on dev, in bits per second (None when there is none).

    iproute2 6.1 prints htb classes as text even with -j, so the text form is parsed.
    """
    if not shutil.which("tc"):
        return None
    proc = subprocess.run(["tc", "class", "show", "dev", dev], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        m = re.search(r"^class htb \S+ .*?\brate (\S+)", line)
        if m:
            return parse_tc_rate(m.group(1))
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
    from lxctool.host import shaping as netshape

    shaped = netshape.in_place(veth)
    if shaped:
        return (shaped["rate_bits"], f"{shaped['kind']} {units.format_bit_rate(shaped['rate_bits'])} on "
                f"{shaped['ifb']} (redirected from {veth} ingress)", f"tc qdisc show dev {shaped['ifb']}")
    policed = [f for f in _tc_json("filter", "show", "dev", veth, "ingress")
               if "police" in json.dumps(f)]
    if policed:
        return None, f"police filter on {veth} ingress", f"tc filter show dev {veth} ingress"
    return None, "no shaping for traffic leaving the container", f"tc filter show dev {veth} ingress"
