"""Hostile names reach neither LXD nor the host: every command that takes a name refuses them.

Each refusal is exit 2 with one line on stderr that names the field, no traceback, and the host
snapshot (LXD objects, firewall, qdiscs, links) is the same before and after all of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from lxctool.core import names
from lxctool.lxd.paths import name_of_url, path
from conftest import host_snapshot, run_cli

HOSTILE = ["x?project=other", "a#b", "a/b", "../etc", "a%2fb", "a b", "wéb", "a\u202eb", ".", "x" * 70, "a:b", "a\tb"]

COMMANDS: list[list[str]] = [
    ["launch", "{}"], ["launch", "okname", "--image", "{}"], ["launch", "okname", "--network", "{}"],
    ["launch", "okname", "--profile", "{}"], ["delete", "{}"], ["delete", "--force", "{}"],
    ["start", "{}"], ["stop", "{}"], ["restart", "{}"], ["limits", "{}"], ["limits", "{}", "--mem", "1GB"],
    ["info", "{}"], ["exec", "{}", "--", "true"], ["verify", "{}"], ["compare", "{}", "--samples", "1"],
    ["network", "create", "{}", "--subnet", "10.250.250.1/24"], ["network", "show", "{}"],
    ["network", "delete", "{}"], ["network", "delete", "--force", "{}"], ["net", "check", "{}"],
    ["image", "build", "{}"], ["image", "delete", "{}"], ["image", "export", "{}", "/tmp/lxctool-never.tar"],
    ["image", "check", "{}"], ["--project", "{}", "list"],
    ["monitor", "{}", "--influx-url", "http://127.0.0.1:9", "--database", "d", "--samples", "1"],
]


# other helpers' and runs' prefixes (t<hex>-, wk<n>-, tdoors-...), verify peers, experiment scratch
_OTHER_RUNS = re.compile(r"^[a-z]+[0-9a-f]*-")
_CHURN = re.compile(r"veth|lxifb|ifb|tap")


def stable(snap: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without what other test runs on this shared machine create and remove meanwhile.

    In CI nothing else runs and the full snapshot is compared (LXCTOOL_REQUIRE_DAEMON=1).
    """
    if os.environ.get("LXCTOOL_REQUIRE_DAEMON") == "1":
        return snap
    out = dict(snap)
    for key in ("instances", "profiles", "networks"):
        out[key] = [t for t in snap[key] if not _OTHER_RUNS.match(t[0]) and not _CHURN.search(t[0])]
    out["volumes"] = [t for t in snap["volumes"] if not _OTHER_RUNS.match(t[1]) and len(t[1]) != 64]
    out["images"] = [t for t in snap["images"] if t[1] != "[]"]
    for key in ("iptables", "nft", "qdiscs"):
        out[key] = "\n".join(ln for ln in snap[key].splitlines() if not _CHURN.search(ln))
    out["links"] = [ln for ln in snap["links"] if not _CHURN.search(ln)]
    out.pop("files", None)  # /run/lxctool and /var/lib/lxctool mtimes move with every other run's launch
    return out


def _refused(proc: Any, args: list[str]) -> None:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, (args, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("lxctool: error: "), (args, proc.stderr)


def test_every_rule_refuses_every_hostile_name() -> None:
    for kind, check in names.CHECKS.items():
        for bad in HOSTILE:
            errors = check(bad, "F")
            assert len(errors) == 1 and errors[0].startswith("F: "), (kind, bad, errors)


def test_good_names_pass() -> None:
    assert names.check_container("web-1") == [] and names.check_network("lxctool0") == []
    assert names.check_network("a" * 15) == [] and names.check_network("a" * 16) != []
    assert names.check_project("lab.2") == [] and names.check_project("lab_2") != []
    assert names.check_profile("lxctool-small") == [] and names.check_image("mediawiki") == []


def test_path_encodes_every_segment() -> None:
    assert path("instances", "x?project=other") == "/1.0/instances/x%3Fproject%3Dother"
    assert path("networks", "a/../b", "leases") == "/1.0/networks/a%2F..%2Fb/leases"
    assert path("profiles", "a b#c%") == "/1.0/profiles/a%20b%23c%25"
    assert name_of_url(path("instances", "x?y")) == "x?y"


@pytest.mark.integration
def test_lxd_door_sees_one_name(lxd: Any) -> None:
    """A query or a segment smuggled in a name is part of the name: LXD answers 404, not another object."""
    assert lxd.network("lxctool0") is not None
    for smuggled in ("lxctool0?project=default", "lxctool0#x", "lxctool0/leases", "lxctool0/../lxctool0"):
        assert lxd.network(smuggled) is None
    assert lxd.profile("lxctool?recursion=1") is None


@pytest.mark.integration
def test_commands_refuse_hostile_names(lxd: Any, tmp_path: Path) -> None:
    before = stable(host_snapshot(lxd))
    experiment = tmp_path / "exp.yaml"
    tried = 0
    for bad in HOSTILE:
        for template in COMMANDS:
            args = [bad if a == "{}" else a for a in template]
            _refused(run_cli(*args, timeout=60), args)
            tried += 1
        experiment.write_text(f"limit: cpu\nvalues: [0.5]\nimage: {bad!r}\n")
        args = ["experiment", "run", str(experiment), "--out", str(tmp_path / "out")]
        _refused(run_cli(*args, timeout=60), args)
        tried += 1
    assert tried == len(HOSTILE) * (len(COMMANDS) + 1)
    after = stable(host_snapshot(lxd))
    if os.environ.get("LXCTOOL_REQUIRE_DAEMON") == "1":
        assert after == before  # CI: nothing else runs, the whole host must be unchanged
    else:  # a shared machine: others create and remove meanwhile; nothing may carry our inputs
        text = repr({k: v for k, v in after.items() if k != "links"})
        assert "okname" not in text and "lxctool-never" not in text
        names = {t[0] for k in ("instances", "profiles", "networks") for t in after[k]}
        names |= {t[1] for t in after["volumes"]}
        assert not names & set(HOSTILE), names & set(HOSTILE)
