"""Pure: typed views of LXD records (lxd/views.py) on record shapes LXD 5.0 returns."""

from __future__ import annotations

import ipaddress

from lxctool.lxd.views import Image, Instance, Network, Profile, ipv4_of_state, used_by_split

STATE = {"status": "Running", "pid": 4242,
         "network": {"lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "scope": "local"}]},
                     "eth0": {"host_name": "veth1234", "hwaddr": "00:16:3e:00:00:01",
                              "addresses": [{"family": "inet", "address": "10.191.0.5", "scope": "global"},
                                            {"family": "inet6", "address": "fe80::1", "scope": "link"}]}}}
RECORD = {"name": "web1", "status": "Running", "profiles": ["default", "lxctool"],
          "config": {"user.lxctool.managed": "true", "volatile.eth0.host_name": "vethOLD",
                     "image.lxctool.recipe": "busybox"},
          "expanded_config": {"user.lxctool.managed": "true", "limits.memory": "256MB"},
          "devices": {}, "expanded_devices": {"root": {"type": "disk", "path": "/", "pool": "lxctool"},
                                              "eth0": {"type": "nic", "network": "lxctool0", "name": "eth0"}},
          "state": STATE}


def test_instance_fields() -> None:
    inst = Instance(RECORD, "lab")
    assert inst.name == "web1" and inst.running and inst.managed
    assert inst.expanded_config["limits.memory"] == "256MB" and inst.profiles == ("default", "lxctool")
    assert inst.ipv4 == ["10.191.0.5"] and inst.host_veth == "veth1234" and inst.init_pid == 4242
    assert inst.lxc_name == "lab_web1" and Instance(RECORD).lxc_name == "web1"
    assert inst.root_pool == "lxctool" and list(inst.nics()) == ["eth0"]


def test_instance_without_state_or_keys() -> None:
    bare = Instance({"name": "c", "status": "Stopped"})
    assert not bare.running and not bare.managed and bare.ipv4 == [] and bare.init_pid is None
    assert bare.host_veth is None and bare.expanded_config == {} and bare.root_pool is None
    # running, state not read: the veth comes from volatile.eth0.host_name
    no_state = Instance({**RECORD, "state": None})
    assert no_state.host_veth == "vethOLD" and no_state.ipv4 == []
    assert no_state.with_state(STATE).host_veth == "veth1234"
    assert Instance.from_state("c", STATE).ipv4 == ["10.191.0.5"]
    # expanded_config missing (a record read without recursion): its own config
    assert Instance({"config": {"a": "1"}}).expanded_config == {"a": "1"}


def test_network_and_used_by() -> None:
    net = Network({"name": "lab1", "managed": True, "status": "Created",
                   "config": {"ipv4.address": "10.20.0.1/24", "user.lxctool.managed": "true",
                              "user.lxctool.isolated": "true"},
                   "used_by": ["/1.0/instances/a", "/1.0/instances/b?project=p", "/1.0/profiles/lxctool"]})
    assert net.lxd_managed and net.lxctool and net.isolated
    assert net.ipv4_interface == ipaddress.IPv4Interface("10.20.0.1/24")
    assert net.used_by_instances == ["a", "b"] and net.used_by_profiles == ["lxctool"]
    assert Network({"config": {"ipv4.address": "auto"}}).ipv4_interface is None
    assert used_by_split([]) == ([], [])


def test_profile_image_and_state_helpers() -> None:
    prof = Profile({"name": "lxctool", "devices": {"root": {"pool": "p"}}, "used_by": ["/1.0/instances/x"]})
    assert prof.devices["root"]["pool"] == "p" and prof.used_by_instances == ["x"] and prof.description == ""
    img = Image({"fingerprint": "abc", "aliases": [{"name": "busybox"}], "properties": {"lxctool.hash": "h"}})
    assert img.aliases == ["busybox"] and img.properties["lxctool.hash"] == "h"
    assert ipv4_of_state(None) == [] and ipv4_of_state(STATE, skip=("lo", "eth0")) == []
