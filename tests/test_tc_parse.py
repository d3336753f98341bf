"""Pure: the one tc parser (host/tc.py) on outputs recorded on this host (tests/data/tc/)."""

from __future__ import annotations

from pathlib import Path

from lxctool.host import tc

DATA = Path(__file__).parent / "data" / "tc"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_htb_class_from_text_even_when_json_was_asked() -> None:
    # iproute2 6.1 answers `tc -j class show` for htb in text: both forms parse the same
    for name in ("class-veth-htb.json", "class-veth-htb.txt"):
        classes = tc.parse_classes(sample(name))
        assert classes == [tc.TcClass("htb", "1:10", 10_000_000)]
        assert tc.class_rate(classes) == 10_000_000


def test_htb_class_in_json_form() -> None:
    # the JSON shape other iproute2 versions print (rates in bytes per second); not recorded here
    text = '[{"class":"htb","handle":"1:10","root":true,"prio":0,"rate":1250000,"ceil":1250000}]'
    assert tc.parse_classes(text) == [tc.TcClass("htb", "1:10", 10_000_000)]


def test_no_classes() -> None:
    assert tc.parse_classes(sample("class-none.json")) == []
    assert tc.class_rate([]) is None


def test_tbf_root_rate_in_bits() -> None:
    assert tc.root_rate(tc.parse_json(sample("qdisc-ifb-tbf.json"))) == ("tbf", 5_000_000)
    assert tc.root_rate(tc.parse_json(sample("qdisc-veth-htb.json"))) is None   # htb: rate is on the class
    assert tc.root_rate(tc.parse_json(sample("qdisc-noqueue.json"))) is None


def test_mirred_redirect_target() -> None:
    filters = tc.parse_json(sample("filter-veth-ingress-mirred.json"))
    assert tc.mirred_target(filters) == "lxifbcdc8f0b904"
    assert not tc.has_police(filters)
    assert tc.mirred_target(tc.parse_json(sample("filter-none.json"))) is None


def test_police_and_bad_json() -> None:
    assert tc.has_police([{"options": {"actions": [{"kind": "police", "rate": 1}]}}])
    assert tc.parse_json("") == [] and tc.parse_json("class htb 1:10 root") == []
    assert tc.parse_json('{"not": "a list"}') == []
