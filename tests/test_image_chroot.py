"""The build chroot on the real host (root, no daemon): mounts and policy-rc.d are undone on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxctool.images import debootstrap as deb
from lxctool.images.build import busybox_root

pytestmark = pytest.mark.host  # mounts /proc, /sys, /dev as root: not in the fast lane


def mounts() -> list[str]:
    return sorted(Path("/proc/mounts").read_text().splitlines())


def test_a_failing_step_undoes_every_mount_and_the_policy(tmp_path: Path) -> None:
    before = mounts()
    root = tmp_path / "rootfs"
    busybox_root(root)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/resolv.conf").symlink_to("../run/resolv.conf")  # as systemd-resolved images have it
    with pytest.raises(deb.BuildStepError) as exc:
        with deb.Chroot(root, "t") as ch:
            assert len(deb.mounts_below(root)) == 4  # proc, sys, dev, dev/pts
            assert ch.run("policy", ["/bin/sh", "-c", "/usr/sbin/policy-rc.d x start; echo $?"]).strip() == "101"
            assert (root / "proc/self").exists() and (root / "dev/null").exists()
            ch.run("commands[0]", ["/bin/sh", "-c", "echo step-output; exit 4"])
    assert str(exc.value) == "t: commands[0]: failed (exit 4); output ends:\n  step-output"
    assert mounts() == before and deb.mounts_below(root) == []
    assert not (root / "usr/sbin/policy-rc.d").exists()
    # the host's DNS file was only lent: the image's own link is back
    assert os.readlink(root / "etc/resolv.conf") == "../run/resolv.conf"


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


def test_files_are_placed_inside_the_root_even_through_absolute_links(tmp_path: Path) -> None:
    from lxctool.images.build import path_in_root, place_files
    from lxctool.images.recipes import FileSpec

    root = tmp_path / "rootfs"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var/run").symlink_to("/run")            # Debian's own absolute link
    (root / "etc").mkdir()
    (root / "etc/up").symlink_to("../../../../..")   # tries to climb out
    (root / "etc/motd").symlink_to("/etc/hostname")  # a file link is replaced, not followed
    place_files(root, (FileSpec("/var/run/lxctool-test-marker", "x"), FileSpec("/etc/up/escaped", "y"),
                       FileSpec("/etc/motd", "hello\n", 0o600)))
    assert (root / "run/lxctool-test-marker").read_text() == "x"
    assert not Path("/run/lxctool-test-marker").exists()
    assert (root / "escaped").read_text() == "y" and path_in_root(root, "/../..") == root
    assert not (root / "etc/motd").is_symlink() and (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/motd").stat().st_mode & 0o777 == 0o600
