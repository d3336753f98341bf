"""Pure tests of the planner: desired + observed fixtures -> ops. No daemon, no fakes, no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lxctool.core.desired import desired_instance, desired_launch, desired_limits
from lxctool.core.errors import NeedsForce, PreflightError, SpecError
from lxctool.core.names import ISOLATED_KEY, MANAGED_KEY
from lxctool.core.nics import Attachment
from lxctool.core.plan import (HASH_KEY, Desired, DesiredInstance, DesiredNetwork, DesiredProfile, DesiredVolume,
                               HostFacts, Observed, ObservedInstance, Op, OpKind, ProfileFile, plan, plan_network_delete,
                               plan_state)
from lxctool.core.spec import LaunchSpec, Limits, parse_limits

HOOK = "/var/lib/lxctool/hooks/net-out"
ROOT = {"type": "disk", "path": "/", "pool": "lxctool"}
ETH0 = {"type": "nic", "name": "eth0", "network": "lxctool0"}
BASE = {"name": "lxctool", "config": {}, "devices": {"root": ROOT, "eth0": ETH0}}
NET = {"name": "lxctool0", "config": {"ipv4.address": "10.191.0.1/24", MANAGED_KEY: "true", ISOLATED_KEY: "true"}}


def web(**over: Any) -> DesiredInstance:
    base: dict[str, Any] = dict(name="web", image="busybox", profiles=("lxctool",),
                                config={"limits.memory": "256MB", MANAGED_KEY: "true"}, devices={})
    return DesiredInstance(**{**base, **over})


def existing(d: DesiredInstance, *, status: str = "Running", hashed: bool = True, **config: str) -> ObservedInstance:
    """The container LXD would report after creating d (plus LXD's own keys)."""
    cfg = {**d.config, "volatile.base_image": "fp1", "image.os": "busybox", **config}
    if hashed:
        cfg[HASH_KEY] = d.config_hash()
    return ObservedInstance(d.name, status, cfg, {k: dict(v) for k, v in d.devices.items()}, d.profiles,
                            expanded_devices={"root": ROOT, "eth0": ETH0, **d.devices})


def observed(*insts: ObservedInstance, **kw: Any) -> Observed:
    return Observed(instances={i.name: i for i in insts}, images={"busybox": "fp1"}, **kw)


def kinds(ops: list[Op]) -> list[str]:
    return [f"{op.kind.value if isinstance(op.kind, OpKind) else op.kind} {op.target}" for op in ops]


# -- instances ------------------------------------------------------------------------------------
def test_missing_instance_is_created_started_and_waited_for() -> None:
    d = web(wait_ipv4=True, ipv4="10.191.0.9")
    ops = plan(Desired(instances=(d,)), observed())
    assert kinds(ops) == ["create web", "start web", "wait-ipv4 web"]
    assert ops[0].payload is d and ops[0].payload.body()["config"][HASH_KEY] == d.config_hash()
    assert ops[2].detail == {"timeout": 60.0, "ipv4": "10.191.0.9"}


def test_not_running_desired_is_created_only() -> None:
    assert kinds(plan(Desired(instances=(web(running=False),)), observed())) == ["create web"]


def test_same_hash_is_noop_and_stopped_is_started() -> None:
    d = web()
    assert kinds(plan(Desired(instances=(d,)), observed(existing(d)))) == ["noop web"]
    assert kinds(plan(Desired(instances=(d,)), observed(existing(d, status="Stopped")))) == ["start web"]
    assert kinds(plan(Desired(instances=(web(running=False),)), observed(existing(d)))) == ["stop web"]


def test_no_hash_but_same_config_is_noop() -> None:
    d = web()
    assert kinds(plan(Desired(instances=(d,)), observed(existing(d, hashed=False)))) == ["noop web"]


def test_live_keys_differ_gives_update_live_with_the_keys() -> None:
    old = web()
    new = web(config={"limits.memory": "512MB", "limits.cpu": "1", "user.role": "db", MANAGED_KEY: "true"})
    ops = plan(Desired(instances=(new,)), observed(existing(old)))
    assert kinds(ops) == ["update-live web"]
    assert ops[0].detail == {"limits.memory": "512MB", "limits.cpu": "1", "user.role": "db"}
    assert ops[0].payload["config"][HASH_KEY] == new.config_hash()
    assert "update-live web (limits.cpu=1, limits.memory=512MB, user.role=db)" == ops[0].describe()


def test_removed_live_key_is_unset_live() -> None:
    old = web(config={"limits.memory": "256MB", "limits.cpu": "1", MANAGED_KEY: "true"})
    ops = plan(Desired(instances=(web(),)), observed(existing(old)))
    assert kinds(ops) == ["update-live web"] and ops[0].payload["config"]["limits.cpu"] == ""


def test_environment_values_are_not_shown() -> None:
    new = web(config={"limits.memory": "256MB", "environment.DB_PASSWORD": "s3cret", MANAGED_KEY: "true"})
    op = plan(Desired(instances=(new,)), observed(existing(web())))[0]
    assert op.kind == OpKind.UPDATE_LIVE and "s3cret" not in json.dumps(op.as_dict()) + op.describe()


def test_device_limit_keys_are_live_other_device_keys_recreate() -> None:
    old = web()
    limited = web(devices={"root": {**ROOT, "limits.read": "10MB"}})  # the profile's root, now with a limit
    ops = plan(Desired(instances=(limited,)), observed(existing(old)))
    assert kinds(ops) == ["update-live web"] and ops[0].detail == {"root.limits.read": "10MB"}
    moved = web(devices={"eth0": {**ETH0, "network": "lab1"}})
    ops = plan(Desired(instances=(moved,)), observed(existing(old)))
    assert kinds(ops) == ["recreate web", "start web"] and ops[0].reason == "device eth0 changed (network)"


def test_non_live_key_and_image_change_recreate_with_reason() -> None:
    old = web()
    priv = web(config={**old.config, "security.privileged": "true"})
    ops = plan(Desired(instances=(priv,)), observed(existing(old)))
    assert kinds(ops) == ["recreate web", "start web"] and "security.privileged" in ops[0].reason
    rebuilt = Observed(instances={"web": existing(old)}, images={"busybox": "fp2"})
    ops = plan(Desired(instances=(old,)), rebuilt)
    assert kinds(ops) == ["recreate web", "start web"] and ops[0].reason.startswith("image changed")
    profs = web(profiles=("lxctool", "lxctool-small"))
    assert plan(Desired(instances=(profs,)), observed(existing(old)))[0].reason.startswith("profiles changed")


def test_prune_deletes_only_what_it_selects_and_is_not_desired() -> None:
    d = web()
    stray = ObservedInstance("stray", "Running", {MANAGED_KEY: "true"})
    foreign = ObservedInstance("theirs", "Running", {})
    obs = observed(existing(d), stray, foreign)
    ops = plan(Desired(instances=(d,)), obs, prune=lambda o: o.managed)
    assert kinds(ops) == ["noop web", "delete stray"]
    assert kinds(plan(Desired(instances=(d,)), obs)) == ["noop web"]


def test_plan_state_start_stop_restart() -> None:
    obs = observed(existing(web()), ObservedInstance("down", "Stopped", {MANAGED_KEY: "true"}))
    assert kinds(plan_state(obs, ["web", "down"], "start")) == ["noop web", "start down"]
    assert kinds(plan_state(obs, ["web", "down"], "stop")) == ["stop web", "noop down"]
    ops = plan_state(obs, ["web", "down"], "restart", force=True)
    assert kinds(ops) == ["restart web", "start down"] and ops[0].detail == {"force": True}


# -- networks, profiles, volumes, images, hook ---------------------------------------------------
def lab(name: str, net: str = "10.20.0.1/24") -> DesiredNetwork:
    return DesiredNetwork(name, {"ipv4.address": net, MANAGED_KEY: "true", ISOLATED_KEY: "true"}, "lab")


def test_network_missing_isolated_gets_its_rule_after_it() -> None:
    ops = plan(Desired(networks=(lab("lab1"),)), Observed())
    assert kinds(ops) == ["ensure-network lab1", "ensure-isolation lab1"] and ops[1].after == ("lab1",)
    have = {"lab1": {"name": "lab1", "config": dict(lab("lab1").config)}}
    assert plan(Desired(networks=(lab("lab1"),)), Observed(networks=have)) == []
    gone = Observed(networks=have, isolation_missing=frozenset({"lab1"}))
    assert kinds(plan(Desired(networks=(lab("lab1"),)), gone)) == ["ensure-isolation lab1"]
    changed = plan(Desired(networks=(lab("lab1", "10.21.0.1/24"),)), Observed(networks=have))
    assert kinds(changed) == ["ensure-network lab1"] and changed[0].detail == {"keys": ["ipv4.address"]}


def test_attached_network_without_its_rule_gets_ensure_isolation_first() -> None:
    d = web(devices={"eth0": {**ETH0, "network": "lab1"}})
    ops = plan(Desired(instances=(d,)), observed(isolation_missing=frozenset({"lab1", "other"})))
    assert kinds(ops) == ["ensure-isolation lab1", "create web", "start web"]
    assert ops[1].after == ("lab1",)


def test_profile_and_volume_ensured_when_missing_or_different() -> None:
    prof = DesiredProfile("lxctool-small", {"limits.memory": "256MB"}, {}, "small")
    vol = DesiredVolume("lxctool", "web-data", {"size": "1GB"})
    d = web(profiles=("lxctool", "lxctool-small"))
    ops = plan(Desired(instances=(d,), profiles=(prof,), volumes=(vol,)), observed())
    assert kinds(ops) == ["ensure-profile lxctool-small", "ensure-volume web-data", "create web", "start web"]
    assert ops[2].after == ("lxctool-small",)
    same = Observed(profiles={"lxctool-small": {"config": {"limits.memory": "256MB"}, "devices": {},
                                                "description": "small"}},
                    volumes={("lxctool", "web-data"): {"config": {"size": "1GB"}}})
    assert plan(Desired(profiles=(prof,), volumes=(vol,)), same) == []


def test_build_image_and_install_hook_come_first() -> None:
    d = web(config={MANAGED_KEY: "true", "raw.lxc": f"lxc.hook.start-host = {HOOK} 10000000\n"})
    obs = Observed(hook_installed=False, hook_path=HOOK)
    ops = plan(Desired(instances=(d,), images=("busybox",)), obs)
    assert kinds(ops) == [f"install-hook {HOOK}", "build-image busybox", "create web", "start web"]
    assert ops[2].after == ("busybox", HOOK)
    assert kinds(plan(Desired(instances=(d,)), Observed(hook_path=HOOK)))[0] == "create web"


def test_prune_networks_and_profiles_after_their_users() -> None:
    obs = Observed(instances={"old": ObservedInstance("old", "Stopped", {MANAGED_KEY: "true"})},
                   networks={"lab9": {"config": {MANAGED_KEY: "true"}}}, profiles={"lxctool-x": {"description": "lxctool profile from x.yaml"}})
    ops = plan(Desired(), obs, prune=lambda o: True, prune_networks=lambda n: True, prune_profiles=lambda p: True)
    assert kinds(ops) == ["delete old", "delete-profile lxctool-x", "delete-network lab9"]
    assert ops[2].after == ("old",)


def test_a_stack_of_many_instances_networks_and_volumes() -> None:
    """What stacks will hand the planner: several services, a network, a volume, one replan."""
    net = lab("st1")
    dev = {"eth0": {**ETH0, "network": "st1"}}
    svcs = tuple(web(name=f"st-{i}", devices=dev, wait_ipv4=True) for i in range(3))
    vol = DesiredVolume("lxctool", "st-db", {})
    desired = Desired(instances=svcs, networks=(net,), volumes=(vol,))
    ops = plan(desired, Observed())
    assert kinds(ops)[:3] == ["ensure-network st1", "ensure-isolation st1", "ensure-volume st-db"]
    assert kinds(ops).count("wait-ipv4 st-0") == 1 and len(ops) == 3 + 3 * 3
    assert all(op.after == ("st1",) for op in ops if op.kind == OpKind.CREATE)
    # converged: a re-plan is all noops; one service changed live, one stopped
    have = Observed(instances={s.name: existing(s) for s in svcs}, networks={"st1": {"config": dict(net.config)}},
                    volumes={("lxctool", "st-db"): {"config": {}}}, images={"busybox": "fp1"})
    assert kinds(plan(desired, have)) == ["noop st-0", "noop st-1", "noop st-2"]
    bigger = web(name="st-1", devices=dev, config={"limits.memory": "1GB", MANAGED_KEY: "true"})
    have2 = Observed(instances={**have.instances, "st-2": existing(svcs[2], status="Stopped")},
                     networks=have.networks, volumes=have.volumes, images=have.images)
    again = plan(Desired(instances=(svcs[0], bigger, svcs[2]), networks=(net,), volumes=(vol,)), have2)
    assert kinds(again) == ["noop st-0", "update-live st-1", "start st-2", "wait-ipv4 st-2"]


def test_op_as_dict_is_json_and_describe_is_one_line() -> None:
    op = Op(OpKind.RECREATE, "web", {"image": "busybox"}, reason="image changed", after=("lab1",), payload=object())
    assert json.loads(json.dumps(op.as_dict())) == {"kind": "recreate", "target": "web", "detail": {"image": "busybox"},
                                                    "reason": "image changed", "after": ["lab1"]}
    assert op.describe() == "recreate web (image=busybox): image changed"
    assert [k.value for k in OpKind][:3] == ["build-image", "install-hook", "ensure-isolation"]


def test_hash_ignores_lxd_keys_and_unset_values() -> None:
    a = web()
    b = web(config={**a.config, "limits.cpu": "", "volatile.eth0.hwaddr": "x", HASH_KEY: "old"})
    assert a.config_hash() == b.config_hash() and a.config_hash() != web(running=False, profiles=()).config_hash()


# -- desired_instance: spec + host facts -> the container ------------------------------------------
FACTS = Observed(profiles={"lxctool": BASE}, networks={"lxctool0": NET}, images={"busybox": "fp1"},
                 caps=HostFacts(cpus=2, tc_police=False, ifb=True), hook_path=HOOK)


def limits(**raw: Any) -> Limits:
    errors: list[str] = []
    out = parse_limits(raw, str, errors)
    assert not errors
    return out


def test_desired_instance_has_limits_marker_and_host_side_egress() -> None:
    d = desired_instance(LaunchSpec("web", limits=limits(mem="256MB", **{"net-out": "10Mbit"})), FACTS)
    assert d.config["limits.memory"] == "256MB" and d.config[MANAGED_KEY] == "true"
    assert d.config["user.lxctool.net-out"] == "10000000"
    assert d.config["raw.lxc"] == f"lxc.hook.start-host = {HOOK} 10000000\n"
    assert "eth0" not in d.devices  # eth0 exactly as the profile has it
    ops = plan(Desired(instances=(d,)), Observed(hook_installed=False, hook_path=HOOK))
    assert kinds(ops)[0] == f"install-hook {HOOK}"


def test_desired_launch_collects_every_error() -> None:
    facts = Observed(profiles={"lxctool": BASE}, networks={"lxctool0": NET},
                     instances={"web": ObservedInstance("web", "Running")}, caps=HostFacts(cpus=2),
                     used_addresses={"lxctool0": {"10.191.0.5": "db"}}, recipes=("busybox", "nginx"),
                     recipe_dir="/images", profile_dir="/profiles", profile_choices=("small",),
                     profile_files={"bad": ProfileFile("bad", "bad.yaml", errors=("bad.yaml: mem: x",))})
    spec = LaunchSpec("web", image="nope", limits=limits(cpu="4"), profiles=("bad", "missing"),
                      attachments=(Attachment("lxctool0", "10.191.0.5"), Attachment("lab7")))
    with pytest.raises(SpecError) as exc:
        desired_launch(spec, facts)
    fields = [e.split(":")[0] for e in exc.value.errors]
    assert fields == ["--cpu", "--image", "--ip lxctool0", "--network", "bad.yaml", "--profile"]
    with pytest.raises(SpecError) as exc:
        desired_launch(LaunchSpec("web"), facts)
    assert exc.value.errors[0].startswith("NAME: 'web' is already taken")
    with pytest.raises(PreflightError):
        desired_launch(LaunchSpec("x"), Observed())


def test_file_profile_becomes_a_desired_profile_and_build_an_image_op() -> None:
    small = ProfileFile("small", "small.yaml", limits(mem="256MB"), "small")
    facts = Observed(profiles={"lxctool": BASE}, networks={"lxctool0": NET}, recipes=("nginx",),
                     profile_files={"small": small}, caps=HostFacts(cpus=2))
    desired = desired_launch(LaunchSpec("w", image="nginx", profiles=("small",), build=True), facts)
    assert desired.images == ("nginx",) and desired.profiles[0].config == {"limits.memory": "256MB"}
    prof = desired.profiles[0]
    assert prof.name == f"lxctool-small-{prof.content_hash()}" and desired.instances[0].profiles == ("lxctool", prof.name)


def test_file_profiles_are_named_by_content() -> None:
    """/a/small.yaml and /b/small.yaml with other limits: two LXD profiles; the same file: one."""
    def launch_with(mem: str, description: str = "small") -> Any:
        pfile = ProfileFile("small", "small.yaml", limits(mem=mem), description)
        facts = Observed(profiles={"lxctool": BASE}, networks={"lxctool0": NET}, images={"busybox": "fp1"},
                         profile_files={"small": pfile}, caps=HostFacts(cpus=2))
        return desired_launch(LaunchSpec("w", profiles=("small",)), facts).profiles[0]
    a, b, a_again = launch_with("256MB"), launch_with("512MB"), launch_with("256MB")
    assert a.name != b.name and a.name == a_again.name and a.name.startswith("lxctool-small-")
    assert launch_with("256MB", "other words").name != a.name
    have = {"config": dict(a.config), "devices": {}, "description": a.description, "used_by": ["/1.0/instances/x"]}
    assert plan(Desired(profiles=(a,)), Observed(profiles={a.name: have})) == []   # exists: nothing to do
    edited = {**have, "config": {"limits.memory": "1GB"}}
    with pytest.raises(PreflightError) as exc:  # never rewritten under the containers that use it
        plan(Desired(profiles=(a,)), Observed(profiles={a.name: edited}))
    assert "changed outside lxctool" in exc.value.message


def test_desired_limits_changes_only_limits_and_replans_to_noop() -> None:
    launched = desired_instance(LaunchSpec("web", limits=limits(cpu="1", mem="256MB")), FACTS)
    have = existing(launched)
    new = desired_limits(have, limits(cpu="0.5", mem="200MB"), FACTS)
    ops = plan(Desired(instances=(new,)), observed(have))
    assert kinds(ops) == ["update-live web"]
    assert ops[0].payload["config"]["limits.cpu"] == "" and ops[0].detail["limits.cpu.allowance"] == "50ms/100ms"
    after = ObservedInstance("web", "Running", {**{k: v for k, v in have.config.items() if k != "limits.cpu"},
                                                "limits.memory": "200MB", "limits.cpu.allowance": "50ms/100ms",
                                                HASH_KEY: new.config_hash()}, have.devices, have.profiles,
                             expanded_devices=have.expanded_devices)
    again = desired_limits(after, limits(mem="200MB"), FACTS)
    assert kinds(plan(Desired(instances=(again,)), observed(after))) == ["noop web"]


# -- ownership: one rule for every command ----------------------------------------------------------
def test_foreign_container_refused_by_every_kind_of_plan_unless_forced() -> None:
    theirs = ObservedInstance("theirs", "Running", {}, expanded_devices={"eth0": ETH0})
    obs = observed(theirs, ObservedInstance("down", "Stopped", {}))
    for action, target in (("start", "down"), ("stop", "theirs"), ("restart", "theirs"), ("start", "theirs")):
        with pytest.raises(NeedsForce) as exc:
            plan_state(obs, [target], action)
        assert exc.value.errors == [f"NAME: container {target!r} was not created by lxctool; nothing changed; "
                                    "add --force to act on it anyway"]
        assert exc.value.exit_code == 2
        assert kinds(plan_state(obs, [target], action, force=True))[0].endswith(target)
    with pytest.raises(NeedsForce):
        plan(Desired(), obs, prune=lambda o: o.name == "theirs")
    assert kinds(plan(Desired(), obs, prune=lambda o: o.name == "theirs", force=True)) == ["delete theirs"]
    changed = web(name="theirs", config={"limits.memory": "512MB"})
    with pytest.raises(NeedsForce):  # update-live (limits) and recreate (stacks' up) alike
        plan(Desired(instances=(changed,)), obs)


def test_foreign_network_and_profile_refused() -> None:
    obs = Observed(networks={"br9": {"config": {}}},
                   profiles={"p": {"description": "made by hand"}, "lxctool-s-1": {"description": "lxctool profile from s.yaml"}})
    with pytest.raises(NeedsForce) as exc:
        plan(Desired(), obs, prune_networks=lambda n: True, prune_profiles=lambda p: True)
    assert [e.split(" was")[0] for e in exc.value.errors] == ["NAME: profile 'p'", "NAME: network 'br9'"]
    with pytest.raises(NeedsForce):
        plan(Desired(profiles=(DesiredProfile("p", {"limits.cpu": "1"}, {}),)), obs)


def test_network_delete_detaches_by_removing_nics_never_moving_them() -> None:
    lab_nic = {"type": "nic", "name": "eth0", "network": "lab"}
    mine = ObservedInstance("mine", "Running", {MANAGED_KEY: "true"}, {"eth0": lab_nic, "eth1": {"type": "nic", "network": "lab"}},
                            ("lxctool",), expanded_devices={"root": ROOT, "eth0": lab_nic,
                                                            "eth1": {"type": "nic", "network": "lab"}})
    other = ObservedInstance("other", "Running", {MANAGED_KEY: "true"}, {}, ("lxctool",),
                             expanded_devices={"root": ROOT, "eth0": ETH0})
    obs = Observed(instances={"mine": mine, "other": other}, profiles={"lxctool": BASE},
                   networks={"lab": {"config": {MANAGED_KEY: "true"}}})
    with pytest.raises(NeedsForce) as exc:
        plan_network_delete(obs, "lab")
    assert exc.value.errors == ["NAME: lab is used by mine; nothing changed; delete or move them, or add --force "
                                "to detach them (their NICs on lab are removed)"]
    ops = plan_network_delete(obs, "lab", force=True)
    assert kinds(ops) == ["detach-nic mine", "delete-network lab"] and ops[1].after == ("mine",)
    # eth0 the base profile also gives (on lxctool0): masked, so it does not fall back onto lxctool0
    assert ops[0].payload == {"eth0": {"type": "none"}} and ops[0].detail["nics"] == ["eth0", "eth1"]
    unused = Observed(networks={"br9": {"config": {}}})
    with pytest.raises(NeedsForce) as exc:
        plan_network_delete(unused, "br9")
    assert exc.value.errors[0].startswith("NAME: network 'br9' was not created by lxctool")
    assert kinds(plan_network_delete(unused, "br9", force=True)) == ["delete-network br9"]
