"""Traffic-control state on host devices: the one reader and parser of `tc` output.

Parsing is pure (tested on recorded outputs in tests/data/tc/); the readers run `tc` through
host/run.py. iproute2 6.1 prints htb classes as text even with `-j` (qdiscs and filters do
come back as JSON), so classes are parsed from either form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lxctool.core import units
from lxctool.host import run


@dataclass(frozen=True)
class TcClass:
    """One traffic class: its kind (htb...), handle and rate in bits per second."""

    kind: str
    handle: str
    rate_bits: int | None


@dataclass(frozen=True)
class Shaped:
    """Egress shaping in place for a veth: its ingress redirected to an IFB with a rate."""

    veth: str
    ifb: str
    kind: str
    rate_bits: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (the shape `info` and `limits` report)."""
        return {"veth": self.veth, "ifb": self.ifb, "kind": self.kind, "rate_bits": self.rate_bits}


# -- pure parsing ------------------------------------------------------------------------------
def parse_tc_rate(text: str) -> int | None:
    """A rate as tc prints it ('10Mbit', '500Kbit', '9600bit') in bits per second."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)bit", text.strip(), re.IGNORECASE)
    if not m:
        return None
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * factor)


def parse_json(text: str) -> list[dict[str, Any]]:
    """`tc -j` output as a list of records; [] when empty or not JSON."""
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    return [d for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []


def parse_classes(text: str) -> list[TcClass]:
    """`tc [-j] class show` output, JSON or text (iproute2 6.1 answers htb in text even with -j)."""
    records = parse_json(text)
    if records:
        out = []
        for rec in records:
            rate = (rec.get("options") or rec).get("rate")
            # tc -j reports rates in bytes per second
            out.append(TcClass(str(rec.get("class", "")), str(rec.get("handle", "")),
                               int(rate) * 8 if isinstance(rate, (int, float)) else None))
        return out
    out = []
    for line in text.splitlines():
        m = re.match(r"class (\S+) (\S+)", line)
        if m:
            rate = re.search(r"\brate (\S+)", line)
            out.append(TcClass(m.group(1), m.group(2), parse_tc_rate(rate.group(1)) if rate else None))
    return out


def root_rate(qdiscs: list[dict[str, Any]]) -> tuple[str, int] | None:
    """(kind, bits/s) of a root tbf qdisc among `tc -j qdisc show` records."""
    for q in qdiscs:
        rate = (q.get("options") or {}).get("rate")
        if q.get("root") and q.get("kind") == "tbf" and isinstance(rate, (int, float)):
            return "tbf", int(rate) * 8  # tc -j reports bytes per second
    return None


def class_rate(classes: list[TcClass], kind: str = "htb") -> int | None:
    """The rate of the first class of that kind, bits/s."""
    return next((c.rate_bits for c in classes if c.kind == kind and c.rate_bits is not None), None)


def mirred_target(filters: list[dict[str, Any]]) -> str | None:
    """The device a mirred redirect among `tc -j filter show` records sends to (None: none)."""
    for flt in filters:
        for act in ((flt.get("options") or {}).get("actions") or []):
            if act.get("kind") == "mirred" and act.get("to_dev"):
                return str(act["to_dev"])
    return None


def has_police(filters: list[dict[str, Any]]) -> bool:
    """Whether any filter record carries a police action."""
    return any("police" in json.dumps(f) for f in filters)


# -- reads of this host ------------------------------------------------------------------------
def _tc(*args: str, json_output: bool = True) -> str:
    if run.which("tc") is None:
        return ""
    done = run.run(["tc", *(["-j"] if json_output else []), *args], check=False)
    return done.stdout if done.ok else ""


def qdiscs(dev: str) -> list[dict[str, Any]]:
    """dev's qdiscs (`tc -j qdisc show`)."""
    return parse_json(_tc("qdisc", "show", "dev", dev))


def classes(dev: str) -> list[TcClass]:
    """dev's traffic classes (`tc class show`)."""
    return parse_classes(_tc("class", "show", "dev", dev, json_output=False))


def ingress_filters(dev: str) -> list[dict[str, Any]]:
    """The filters on dev's ingress qdisc (`tc -j filter show ... ingress`)."""
    return parse_json(_tc("filter", "show", "dev", dev, "ingress"))


def htb_rate_bits(dev: str) -> int | None:
    """The rate of the first htb class on dev, in bits per second (None when there is none)."""
    return class_rate(classes(dev))


def qdisc_rate(dev: str) -> tuple[str, int] | None:
    """(kind, bits/s) of dev's root tbf or htb rate, None when it has none."""
    got = root_rate(qdiscs(dev))
    if got:
        return got
    rate = htb_rate_bits(dev)
    return ("htb", rate) if rate is not None else None


def redirect_target(veth: str) -> str | None:
    """The device that veth's ingress filter redirects to (None when there is no redirect)."""
    return mirred_target(ingress_filters(veth))


def in_place(veth: str | None) -> Shaped | None:
    """The egress shaping really in place for a veth: redirect device, qdisc kind and rate."""
    if not veth:
        return None
    ifb = redirect_target(veth)
    got = qdisc_rate(ifb) if ifb else None
    if not ifb or not got:
        return None
    return Shaped(veth, ifb, got[0], got[1])


def effective_rate(veth: str | None, direction: str) -> tuple[int | None, str, str | None]:
    """(bits/s, text, source) of the shaping in place for a container's ingress or egress."""
    if veth is None:
        return None, "no host-side veth (not running)", None
    if direction == "ingress":
        rate = htb_rate_bits(veth)
        if rate is None:
            return None, "no shaping on the host-side veth", f"tc class show dev {veth}"
        return rate, f"htb {units.format_bit_rate(rate)} on {veth}", f"tc class show dev {veth}"
    shaped = in_place(veth)
    if shaped:
        return (shaped.rate_bits, f"{shaped.kind} {units.format_bit_rate(shaped.rate_bits)} on "
                f"{shaped.ifb} (redirected from {veth} ingress)", f"tc qdisc show dev {shaped.ifb}")
    if has_police(ingress_filters(veth)):
        return None, f"police filter on {veth} ingress", f"tc filter show dev {veth} ingress"
    return None, "no shaping for traffic leaving the container", f"tc filter show dev {veth} ingress"
