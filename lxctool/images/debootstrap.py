"""Debian root filesystems built on the host: the host's own apt source, a cached debootstrap
base per suite and variant, and a chroot in which packages install without starting services.

No mirror is written here: the package source is read from the host's apt sources (one-line
`*.list` and deb822 `*.sources`), and the host's apt proxy settings are passed on.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from lxctool.core.errors import LxdError
from lxctool.host import run
from lxctool.images.aptsources import apt_proxy_env, debian_sources, host_sources, mirror_for
from lxctool.report.progress import progress

POLICY_RC = "#!/bin/sh\n# lxctool: no service starts while an image is built\nexit 101\n"
TAIL_LINES = 15


class BuildStepError(LxdError):
    """A build step failed; the message names the recipe, the step and the output tail."""


def cache_dir(kind: str) -> Path:
    """LXCTOOL_CACHE_DIR/<kind> (default /var/cache/lxctool/<kind>), created."""
    d = Path(os.environ.get("LXCTOOL_CACHE_DIR", "/var/cache/lxctool")) / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_step(label: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a command; on failure raise BuildStepError with its output's last lines."""
    try:
        proc = run.run(argv, check=False, env=env, timeout=timeout, merge_stderr=True)
    except run.ToolMissing:
        raise BuildStepError(f"{label}: {argv[0]} is not installed on the host") from None
    except run.ToolTimeout:
        raise BuildStepError(f"{label}: still running after {timeout:.0f}s") from None
    if proc.returncode != 0:
        tail = "\n  ".join(proc.stdout.strip().splitlines()[-TAIL_LINES:])
        raise BuildStepError(f"{label}: failed (exit {proc.returncode}); output ends:\n  {tail}")
    return proc.stdout


def pack(root: Path, tarball: Path, extra: Path | None = None) -> None:
    """Tar ROOT (numeric owners, xattrs) as `rootfs/`, plus metadata.yaml from EXTRA's folder."""
    compress = "zstd -T0 -3 -q" if shutil.which("zstd") else "gzip -1"
    argv = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-I", compress, "-cf",
            str(tarball), "-C", str(root.parent)]
    argv += [extra.name] if extra else []
    run_step("pack", argv + [root.name])


def unpack(tarball: Path, dest: Path) -> None:
    """Extract a tarball made by pack (or LXD's export) into DEST."""
    dest.mkdir(parents=True, exist_ok=True)
    run_step("unpack", ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xf",
                        str(tarball), "-C", str(dest)])


def base_rootfs(suite: str, variant: str, dest: Path, say: Callable[[str], None]) -> Path:
    """Put the cached debootstrap root of SUITE/VARIANT into DEST (debootstrap it once)."""
    cached = cache_dir("bases") / f"{suite}-{variant}.tar.zst"
    with build_lock(f"base-{suite}-{variant}"):
        if not cached.is_file():
            _debootstrap_base(suite, variant, cached, say)
    dest.parent.mkdir(parents=True, exist_ok=True)
    unpack(cached, dest.parent)
    return dest


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """An exclusive lock (flock) shared by every lxctool process on this host: two builds of
    the same base or recipe wait for each other instead of racing."""
    with open(cache_dir("locks") / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _debootstrap_base(suite: str, variant: str, cached: Path, say: Callable[[str], None]) -> None:
    """debootstrap SUITE/VARIANT from the host's source (and proxy), then pack it into CACHED."""
    src = mirror_for(suite)
    say(f"debootstrap {suite} ({variant}) from the host's source {src.uri} (about a minute; cached after)")
    with workdir(f"base-{suite}") as tmp:
        root = tmp / "rootfs"
        argv = ["debootstrap", f"--variant={variant}"]
        if src.signed_by and Path(src.signed_by).is_file():
            argv.append(f"--keyring={src.signed_by}")
        run_step(f"debootstrap {suite}", argv + [suite, str(root), src.uri], env=apt_proxy_env())
        _write_sources(root, suite)
        for f in ("etc/hostname", "etc/resolv.conf"):
            (root / f).unlink(missing_ok=True)
        partial = tmp / "base.tar.zst"
        pack(root, partial)
        partial.rename(cached)  # complete files only: an interrupted run leaves no cache




OWNER_FILE = ".lxctool-owner"  # in every build work folder: "PID:START" of the building lxctool


def stale_work_folders() -> list[tuple[Path, str, list[str]]]:
    """(folder, owner, mounts) of build work folders whose owner process is gone.

    A folder without an owner file is never listed: it may be a build by another lxctool install.
    """
    from lxctool.host import owner  # lazy: only gc and a build's start look for stale folders

    out = []
    work = cache_dir("work")
    for folder in sorted(work.iterdir()) if work.is_dir() else []:
        try:
            who = (folder / OWNER_FILE).read_text().strip()
        except OSError:
            continue
        if not owner.alive(who):
            out.append((folder, who, mounts_below(folder)))
    return out


def remove_work_folder(folder: Path) -> bool:
    """Unmount everything below a work folder, then remove it (never crossing into a mount)."""
    unmount_below(folder)
    if mounts_below(folder):
        return False
    run.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)
    return not folder.exists()


@contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A temporary folder under the cache; on exit unmount anything left below it, then remove it
    without ever crossing into another filesystem (a bind-mounted /dev must never be deleted)."""
    from lxctool.host import owner  # lazy: only a build needs the owner token

    for folder, who, mounts in stale_work_folders():  # what a killed build left: mounts, then folder
        if remove_work_folder(folder):
            progress(f"image: removed {folder} left by an interrupted build ({len(mounts)} mount(s), owner {who} gone)")
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=cache_dir("work")))
    (tmp / OWNER_FILE).write_text(owner.token())  # lets `lxctool gc` tell a killed build's folder
    try:
        yield tmp
    finally:
        from lxctool.host.signals import deferred

        with deferred():  # unmount and remove in one piece; a signal is delivered afterwards
            unmount_below(tmp)
            still = mounts_below(tmp)
            if still:
                progress(f"image: left {tmp} in place: {', '.join(still)} still mounted")
            else:
                run.run(["rm", "-rf", "--one-file-system", str(tmp)], check=False)


def _write_sources(root: Path, suite: str) -> None:
    """The image's apt sources: the host's entries for SUITE (and its updates/security)."""
    lines = [src.line(s) for src, s in debian_sources(host_sources(), suite)]
    (root / "etc/apt/sources.list").write_text("# from the build host's apt sources\n" + "\n".join(lines) + "\n")


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below ROOT (from /proc/mounts), deepest first."""
    prefix = str(root.resolve())
    mounts = [line.split()[1].replace("\\040", " ") for line in Path("/proc/mounts").read_text().splitlines()]
    return sorted({m for m in mounts if m == prefix or m.startswith(prefix + "/")}, key=len, reverse=True)


def unmount_below(root: Path) -> list[str]:
    """Unmount everything mounted at or below ROOT, deepest first; return what was mounted."""
    below = mounts_below(root)
    for m in below:
        if not run.succeeds(["umount", m]):
            run.succeeds(["umount", "-l", m])
    return below


class Chroot:
    """An image root prepared for running commands: /proc, /sys, /dev mounted, DNS and no
    service starts (policy-rc.d); everything undone on exit, also after a failure."""

    MOUNTS = (("proc", ["-t", "proc", "proc"]), ("sys", ["-t", "sysfs", "sysfs"]),
              ("dev", ["--bind", "/dev"]), ("dev/pts", ["--bind", "/dev/pts"]))

    def __init__(self, root: Path, recipe: str) -> None:
        self.root = root
        self.recipe = recipe
        self.env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "LANG": "C",
                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **apt_proxy_env()}
        self._resolv: bytes | None = None
        self._resolv_link: str | None = None
        self._updated = False

    def __enter__(self) -> "Chroot":
        try:
            for target, args in self.MOUNTS:
                (self.root / target).mkdir(parents=True, exist_ok=True)
                run_step(f"{self.recipe}: mount {target}", ["mount", *args, str(self.root / target)])
            policy = self.root / "usr/sbin/policy-rc.d"
            policy.write_text(POLICY_RC)
            policy.chmod(0o755)
            resolv = self.root / "etc/resolv.conf"
            self._resolv_link = os.readlink(resolv) if resolv.is_symlink() else None
            self._resolv = resolv.read_bytes() if resolv.is_file() and not resolv.is_symlink() else None
            resolv.unlink(missing_ok=True)
            shutil.copyfile("/etc/resolv.conf", resolv)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        unmount_below(self.root)
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        resolv = self.root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        if self._resolv_link is not None:
            resolv.symlink_to(self._resolv_link)
        elif self._resolv is not None:
            resolv.write_bytes(self._resolv)

    def run(self, step: str, argv: list[str], timeout: float = 1800) -> str:
        """Run argv inside the root; BuildStepError names the recipe and step."""
        return run_step(f"{self.recipe}: {step}", ["chroot", str(self.root), *argv], self.env, timeout)

    def apt_install(self, packages: list[str]) -> None:
        """apt-get install --no-install-recommends (lists updated once per build), from the host's
        source via the host's proxy."""
        if not self._updated:
            self.run("apt-get update", ["apt-get", "-q", "update"])
            self._updated = True
        self.run(f"apt-get install {' '.join(packages)}",
                 ["apt-get", "-q", "-y", "--no-install-recommends", "install", *packages])

    def apt_clean(self) -> None:
        """Drop downloaded packages and package lists: they only make the image bigger."""
        self.run("apt-get clean", ["apt-get", "clean"])
        for lists in (self.root / "var/lib/apt/lists").glob("*_*"):
            lists.unlink(missing_ok=True)
