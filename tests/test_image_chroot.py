"""The build chroot on the real host (root, no daemon): mounts and policy-rc.d are undone on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctool import debootstrap as deb
from lxctool.images import busybox_root


def mounts() -> list[str]:
    return sorted(Path("/proc/mounts").read_text().splitlines())


def test_a_failing_step_undoes_every_mount_and_the_policy(tmp_path: Path) -> None:
    before = mounts()
    root = tmp_path / "rootfs"
    busybox_root(root)
    with pytest.raises(deb.BuildStepError) as exc:
        with deb.Chroot(root, "t") as ch:
            assert len(deb.mounts_below(root)) == 4  # proc, sys, dev, dev/pts
            assert ch.run("policy", ["/bin/sh", "-c", "/usr/sbin/policy-rc.d x start; echo $?"]).strip() == "101"
            assert (root / "proc/self").exists() and (root / "dev/null").exists()
            ch.run("commands[0]", ["/bin/sh", "-c", "echo step-output; exit 4"])
    assert str(exc.value) == "t: commands[0]: failed (exit 4); output ends:\n  step-output"
    assert mounts() == before and deb.mounts_below(root) == []
    assert not (root / "usr/sbin/policy-rc.d").exists()
    assert not (root / "etc/resolv.conf").exists()  # the host's DNS file was only lent


def test_workdir_is_removed_after_a_failure_even_with_a_mount_inside(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCTOOL_CACHE_DIR", str(tmp_path / "cache"))
    before = mounts()
    with pytest.raises(RuntimeError):
        with deb.workdir("t") as tmp:
            (tmp / "dev").mkdir()
            deb.run_step("mount", ["mount", "--bind", "/dev", str(tmp / "dev")])
            raise RuntimeError("a step failed")
    assert not tmp.exists() and mounts() == before
    assert Path("/dev/null").exists()  # the bind-mounted /dev was unmounted, never deleted
