"""Pure: a stack -> Desired -> the planner against observed fixtures gives each op kind.
No daemon; the observed side is built as LXD would report what an earlier `up` created."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from lxctool.core.plan import Desired, Observed, ObservedInstance, OpKind, plan
from lxctool.stacks import model as m
from lxctool.stacks import placement
from lxctool.stacks.desired import HostBase, build_desired, context
from lxctool.stacks.load import load

BASE = HostBase(base_devices={"eth0": {"type": "nic", "network": "lxctool0", "name": "eth0"},
                              "root": {"type": "disk", "pool": "lxctool", "path": "/"}})
DOC: dict[str, Any] = {
    "name": "s",
    "networks": {"back": {"subnet": "10.41.0.1/24"}},
    "services": {
        "db": {"image": "busybox", "limits": {"mem": "64MB"}, "networks": {"back": {"ip": "10.41.0.10"}},
               "volumes": {"data": "/data"}},
        "web": {"image": "busybox", "replicas": 2, "depends_on": ["db"],
                "networks": {"back": {}}, "environment": {"DB": "{{ services.db.ipv4 }}"}},
    },
}
FP = {"busybox": "f" * 64, "other": "e" * 64}


def stack_of(tmp_path: Path, doc: dict[str, Any]) -> m.Stack:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load(path)[0]


def desired_of(stack: m.Stack) -> Desired:
    return build_desired(stack, BASE, context(stack, {}), {})


def observed_from(desired: Desired, status: str = "Running") -> Observed:
    """What LXD reports after those instances, networks and volumes were created."""
    insts = {}
    for d in desired.instances:
        body = d.body()
        config = {**body["config"], "volatile.base_image": FP[d.image]}
        insts[d.name] = ObservedInstance(d.name, status, config, body["devices"], tuple(d.profiles))
    return Observed(instances=insts, networks={n.name: {"config": dict(n.config)} for n in desired.networks},
                    volumes={(v.pool, v.name): {"config": dict(v.config)} for v in desired.volumes}, images=FP)


def kinds(ops: list[Any]) -> list[tuple[str, str]]:
    return [(op.kind.value if hasattr(op.kind, "value") else str(op.kind), op.target) for op in ops]


def test_empty_host_creates_network_volume_and_every_replica(tmp_path: Path) -> None:
    desired = desired_of(stack_of(tmp_path, DOC))
    ops = kinds(plan(desired, Observed(images=FP)))
    assert ("ensure-network", "s-back") in ops and ("ensure-volume", "s-data") in ops
    for name in ("s-db-1", "s-web-1", "s-web-2"):
        assert ("create", name) in ops and ("start", name) in ops
    db = next(d for d in desired.instances if d.name == "s-db-1")
    assert db.config["limits.memory"] == "64MB" and db.config[m.STACK_KEY] == "s"
    assert db.config[m.SERVICE_KEY] == "db" and db.devices["eth0"]["network"] == "s-back"
    assert db.devices["eth0"]["ipv4.address"] == "10.41.0.10"
    assert db.devices["vol-data"] == {"type": "disk", "pool": "lxctool", "source": "s-data", "path": "/data"}
    web = next(d for d in desired.instances if d.name == "s-web-2")
    assert web.config["environment.DB"] == "10.41.0.10" and "ipv4.address" not in web.devices["eth0"]


def test_what_up_made_plans_as_all_noop(tmp_path: Path) -> None:
    desired = desired_of(stack_of(tmp_path, DOC))
    ops = plan(desired, observed_from(desired), prune=lambda o: True)
    assert {k for k, _ in kinds(ops)} == {"noop"}


def test_memory_change_is_one_update_live_with_the_key(tmp_path: Path) -> None:
    before = desired_of(stack_of(tmp_path, DOC))
    doc = yaml.safe_load(yaml.safe_dump(DOC))
    doc["services"]["db"]["limits"]["mem"] = "96MB"
    ops = plan(desired_of(stack_of(tmp_path, doc)), observed_from(before))
    changed = [op for op in ops if op.kind != OpKind.NOOP]
    assert kinds(changed) == [("update-live", "s-db-1")]
    assert changed[0].detail["limits.memory"] == "96MB"


def test_image_change_recreates_with_the_reason(tmp_path: Path) -> None:
    before = desired_of(stack_of(tmp_path, DOC))
    doc = yaml.safe_load(yaml.safe_dump(DOC))
    doc["services"]["db"]["image"] = "other"
    ops = [op for op in plan(desired_of(stack_of(tmp_path, doc)), observed_from(before)) if op.kind != OpKind.NOOP]
    assert kinds(ops)[0] == ("recreate", "s-db-1") and "image changed" in ops[0].reason


def test_removed_service_is_deleted_and_a_stopped_one_started(tmp_path: Path) -> None:
    before = desired_of(stack_of(tmp_path, DOC))
    doc = yaml.safe_load(yaml.safe_dump(DOC))
    del doc["services"]["web"]
    ops = kinds(plan(desired_of(stack_of(tmp_path, doc)), observed_from(before, "Stopped"),
                     prune=lambda o: o.config.get(m.STACK_KEY) == "s"))
    assert ("delete", "s-web-1") in ops and ("delete", "s-web-2") in ops
    assert ("start", "s-db-1") in ops


def test_scaling_down_deletes_the_highest_replicas_only(tmp_path: Path) -> None:
    before = desired_of(stack_of(tmp_path, DOC))
    doc = yaml.safe_load(yaml.safe_dump(DOC))
    doc["services"]["web"]["replicas"] = 1
    ops = kinds(plan(desired_of(stack_of(tmp_path, doc)), observed_from(before),
                     prune=lambda o: o.config.get(m.STACK_KEY) == "s"))
    assert ("delete", "s-web-2") in ops and ("noop", "s-web-1") in ops


MEMBERS = [{"name": f"member{i}", "status": "Online", "clustered": True} for i in (1, 2, 3)]


def placed(tmp_path: Path, web: dict[str, Any], db: dict[str, Any] | None = None) -> m.Stack:
    doc = {"name": "p", "services": {"web": {"image": "busybox", "replicas": 4, "placement": web},
                                     **({"db": {"image": "busybox", "placement": db}} if db else {})}}
    return stack_of(tmp_path, doc)


def test_spread_is_round_robin_by_member_name_and_member_pins(tmp_path: Path) -> None:
    stack = placed(tmp_path, {"spread": True}, {"member": "member2"})
    host = replace(BASE, members=("member3", "member1", "member2"))
    desired = build_desired(stack, host, context(stack, {}), {})
    assert {d.name: d.member for d in desired.instances} == {
        "p-web-1": "member1", "p-web-2": "member2", "p-web-3": "member3", "p-web-4": "member1",
        "p-db-1": "member2"}
    ops = plan(desired, Observed(images=FP))
    assert next(op for op in ops if op.target == "p-db-1").detail["member"] == "member2"


def test_a_replica_on_the_wrong_member_is_recreated_the_right_one_is_noop(tmp_path: Path) -> None:
    stack = placed(tmp_path, {"spread": True}, {"member": "member2"})
    desired = build_desired(stack, replace(BASE, members=("member1", "member2", "member3")), context(stack, {}), {})
    observed = observed_from(desired)
    where = {d.name: d.member for d in desired.instances}
    where["p-db-1"] = "member3"
    observed = replace(observed, instances={n: replace(o, location=where[n]) for n, o in observed.instances.items()})
    ops = [op for op in plan(desired, observed) if op.kind != OpKind.NOOP]
    assert kinds(ops)[0] == ("recreate", "p-db-1") and ops[0].reason == "member changed (member3 -> member2)"
    assert {t for _, t in kinds(ops)} == {"p-db-1"}


def test_placement_needs_a_cluster_and_an_online_member(tmp_path: Path) -> None:
    stack = placed(tmp_path, {"spread": True}, {"member": "member9"})
    assert placement.check(stack, MEMBERS, "remote x") == [
        "services.db.placement.member: no cluster member 'member9'; online members: member1, member2, member3"]
    offline = [{**MEMBERS[0], "status": "Offline"}, *MEMBERS[1:]]
    stack = placed(tmp_path, {"spread": True}, {"member": "member1"})
    assert placement.check(stack, offline, "remote x") == [
        "services.db.placement.member: member member1 is Offline; online members: member2, member3"]
    lone = [{"name": "h", "status": "Online", "clustered": False}]
    assert placement.check(stack, lone, "/var/lib/lxd/unix.socket") == [
        f"services.{s}.placement: the LXD server (/var/lib/lxd/unix.socket) is not a cluster; drop placement: "
        "(it places replicas on cluster members)" for s in ("web", "db")]


def test_stack_networks_and_volumes_are_refused_on_a_cluster(tmp_path: Path) -> None:
    doc = {"name": "p", "networks": {"back": {"subnet": "10.41.0.1/24"}},
           "services": {"db": {"image": "busybox", "placement": {"member": "member1"},
                               "networks": {"back": {}}, "volumes": {"data": "/data"}}}}
    errors = placement.check(stack_of(tmp_path, doc), MEMBERS, "remote x")
    assert [e.split(":")[0] for e in errors] == ["networks.back", "services.db.volumes"]
