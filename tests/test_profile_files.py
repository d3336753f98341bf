"""Integration: limit profile files are identified by their content. Two files named small.yaml in
different folders keep their own limits (cgroup values); parallel launches of one new file all
succeed. The LXD profiles these tests make carry the run prefix in their description and are
removed afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import lxctool_bin, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def own_profiles(lxd: Any, run_prefix: str, containers: Any) -> Iterator[None]:
    """Removes, after the test (and after its containers), the file profiles this run made."""
    yield
    containers.cleanup()
    for prof in lxd.profiles():
        if prof["name"].startswith("lxctool-") and run_prefix in str(prof.get("description")):
            subprocess.run(["lxc", "profile", "delete", prof["name"]], capture_output=True)


def write(folder: Path, run_prefix: str, mem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "small.yaml"
    path.write_text(f"description: {run_prefix} small from {folder.name}\nmem: {mem}\nprocesses: 100\n")
    return path


def memory(name: str) -> tuple[str, int]:
    """(limits.memory as configured in LXD, as the kernel enforces it)."""
    rows = json.loads(run_cli("info", name, "--format", "json", check=True).stdout)["limits"]
    row = next(r for r in rows if r["limit"] == "limits.memory")
    return row["configured"], row["effective"]


def test_same_file_name_other_folder_keeps_its_own_limits(lxd: Any, containers: Any, own_profiles: None,
                                                           tmp_path: Path, run_prefix: str) -> None:
    a = write(tmp_path / "a", run_prefix, "256MB")
    b = write(tmp_path / "b", run_prefix, "384MB")
    ca, _ = containers.launch("--profile", str(a), tag="a")
    assert memory(ca) == ("256MB", 256_000_000)
    cb, _ = containers.launch("--profile", str(b), tag="b")
    assert memory(cb) == ("384MB", 384_000_000)
    assert memory(ca) == ("256MB", 256_000_000)  # the second file did not rewrite the first's profile
    pa, pb = (lxd.instance(c)["profiles"][-1] for c in (ca, cb))
    assert pa != pb and pa.startswith("lxctool-small-") and pb.startswith("lxctool-small-")
    cc, _ = containers.launch("--profile", str(a), tag="c")  # the same file again: the same profile
    assert lxd.instance(cc)["profiles"][-1] == pa and memory(ca) == ("256MB", 256_000_000)


def test_parallel_launches_with_one_new_profile_file(lxd: Any, containers: Any, own_profiles: None,
                                                     tmp_path: Path, run_prefix: str) -> None:
    path = write(tmp_path / "p", run_prefix, "192MB")
    names = [containers.name("par") for _ in range(4)]
    procs = [subprocess.Popen([lxctool_bin(), "launch", n, "--profile", str(path), "--no-wait"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    profiles = {lxd.instance(n)["profiles"][-1] for n in names}
    assert len(profiles) == 1
    for n in names:
        assert memory(n) == ("192MB", 192_000_000)


def test_creating_a_profile_another_launch_just_created(lxd: Any, own_profiles: None, run_prefix: str) -> None:
    """The race behind parallel launches, made certain: this launch's read says the profile is
    missing, another launch creates it before this one's create. Same content: success; other
    content: a clear LXD error, the other launch's profile unchanged."""
    from lxctool.apply.executor import Context
    from lxctool.apply.handlers import HANDLERS
    from lxctool.core.errors import LxdError
    from lxctool.core.model import file_profile
    from lxctool.core.plan import MISSING, Op, OpKind
    from lxctool.lxd.client import Lxd

    class StaleRead(Lxd):
        """Its first profile() read was taken before the other launch created the profile."""

        stale = True

        def profile(self, name: str) -> dict[str, Any] | None:
            if self.stale:
                self.stale = False
                return None
            return super().profile(name)

    prof = file_profile(f"{run_prefix}race", {"limits.memory": "200MB"}, {}, f"lxctool profile from {run_prefix}")
    lxd.put_profile(prof.name, dict(prof.config), {}, prof.description)  # the other launch won
    op = Op(OpKind.ENSURE_PROFILE, prof.name, reason=MISSING, payload=prof)
    HANDLERS[OpKind.ENSURE_PROFILE](Context(StaleRead(), 1), op)  # same content: fine
    other = type(prof)(prof.name, {"limits.memory": "300MB"}, {}, prof.description)
    with pytest.raises(LxdError):
        HANDLERS[OpKind.ENSURE_PROFILE](Context(StaleRead(), 1), Op(OpKind.ENSURE_PROFILE, prof.name,
                                                                    reason=MISSING, payload=other))
    assert lxd.profile(prof.name)["config"] == {"limits.memory": "200MB"}
