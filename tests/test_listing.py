"""`lxctool list` reads status with recursion=1, counters from cgroups and IPv4s from DHCP leases:
the rows must equal what LXD's full state says, at a cost that does not grow with the containers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import run_cli

pytestmark = pytest.mark.integration


def networks_in_use(lxd: Any) -> set[str]:
    from lxctool.lxd.views import Instance
    from lxctool.observe.listing import _network, _nics

    views = [Instance(record) for record in lxd.instances_brief()]
    return {n for i in views if i.managed and i.running for _, dev in _nics(i) if (n := _network(dev))}


def test_list_rows_equal_the_full_state_rows(lxd, containers) -> None:
    from lxctool.apply.lifecycle import list_rows as state_rows
    from lxctool.lxd.client import Lxd
    from lxctool.observe.listing import list_rows

    up, _ = containers.launch("--mem", "96MB", "--cpu", "1", tag="ls")
    down, _ = containers.launch("--processes", "40", tag="ls")
    run_cli("stop", down, "--force", check=True)
    client = Lxd()
    listed = list_rows(client)
    assert listed is not None  # the local daemon, not a cluster
    fast = {r["name"]: r for r in listed}
    requests = client.requests
    slow = {r["name"]: r for r in state_rows(Lxd())}
    for name in (up, down):
        a, b = fast[name], slow[name]
        assert {k: a[k] for k in ("state", "ipv4", "limits", "memory_limit_bytes")} == \
               {k: b[k] for k in ("state", "ipv4", "limits", "memory_limit_bytes")}, (a, b)
    assert fast[up]["ipv4"] and fast[up]["processes"] == slow[up]["processes"] >= 1
    assert abs(fast[up]["memory_bytes"] - slow[up]["memory_bytes"]) < 0.25 * slow[up]["memory_bytes"]
    assert fast[down]["ipv4"] == [] and fast[down]["processes"] is None and fast[down]["memory_bytes"] is None
    # one request for the containers, one per network in use: not one per container
    assert requests <= 1 + len(networks_in_use(lxd)), requests
    cli = {r["name"]: r for r in json.loads(run_cli("list", "--format", "json", check=True).stdout)}
    assert cli[up]["ipv4"] == fast[up]["ipv4"] and cli[down]["state"] == "STOPPED"
