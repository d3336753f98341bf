"""Debian root filesystems built on the host: the host's own apt source, a cached debootstrap
base per suite and variant, and a chroot in which packages install without starting services.

No mirror is written here: the package source is read from the host's apt sources (one-line
`*.list` and deb822 `*.sources`), and the host's apt proxy settings are passed on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import LxdError, PreflightError

APT_DIR = Path("/etc/apt")
POLICY_RC = "#!/bin/sh\n# lxctool: no service starts while an image is built\nexit 101\n"
TAIL_LINES = 15


class BuildStepError(LxdError):
    """A build step failed; the message names the recipe, the step and the output tail."""


@dataclass(frozen=True)
class AptSource:
    """One `deb` entry of the host's apt configuration."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""

    def line(self, suite: str) -> str:
        """This entry for one suite as a one-line sources.list entry."""
        opt = f"[signed-by={self.signed_by}] " if self.signed_by else ""
        return f"deb {opt}{self.uri} {suite} {' '.join(self.components)}"


def parse_one_line(text: str) -> list[AptSource]:
    """Parse a one-line-style sources.list text (`deb [opts] URI SUITE COMPONENT...`)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        opts: dict[str, str] = {}
        m = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
        rest = line[4:].strip()
        if m:
            for opt in m.group(1).split():
                k, _, v = opt.partition("=")
                opts[k.lower()] = v
            rest = m.group(2)
        parts = rest.split()
        if len(parts) >= 2:
            out.append(AptSource(parts[0], (parts[1],), tuple(parts[2:]), opts.get("signed-by", "")))
    return out


def parse_deb822(text: str) -> list[AptSource]:
    """Parse deb822 `.sources` text (stanzas of Types/URIs/Suites/Components; Enabled: no skips)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by", "")
        if signed.startswith("-----"):  # an inline key cannot travel as a path
            signed = ""
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri, tuple(fields.get("suites", "").split()),
                                 tuple(fields.get("components", "").split()), signed))
    return out


def host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Every `deb` entry the host's apt reads, in apt's order."""
    out: list[AptSource] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(errors="replace"))
    d = apt_dir / "sources.list.d"
    for f in sorted(d.glob("*")) if d.is_dir() else []:
        if f.suffix == ".list":
            out += parse_one_line(f.read_text(errors="replace"))
        elif f.suffix == ".sources":
            out += parse_deb822(f.read_text(errors="replace"))
    return out


def debian_sources(sources: list[AptSource], suite: str) -> list[tuple[AptSource, str]]:
    """(entry, suite) pairs for SUITE and its -updates/-security suites, main archive first."""
    pairs = [(s, x) for s in sources for x in s.suites
             if x == suite or x.startswith(suite + "-") or x.startswith(suite + "/")]
    return sorted(pairs, key=lambda p: p[1] != suite)


def mirror_for(suite: str, sources: list[AptSource] | None = None) -> AptSource:
    """The host's entry that serves SUITE itself; PreflightError naming the files read."""
    pairs = debian_sources(host_sources() if sources is None else sources, suite)
    for src, s in pairs:
        if s == suite:
            return src
    raise PreflightError(f"debootstrap.suite: the host's apt sources (/etc/apt/sources.list, "
                         f"/etc/apt/sources.list.d/*.list and *.sources) have no entry for {suite!r}; "
                         "add one or use a suite they list")


def apt_proxy_env() -> dict[str, str]:
    """http_proxy/https_proxy from the host's apt configuration (Acquire::http(s)::Proxy)."""
    env: dict[str, str] = {}
    try:
        dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        dump = ""
    for line in dump.splitlines():
        m = re.match(r'Acquire::(https?)::Proxy\s+"([^"]*)";', line.strip(), re.IGNORECASE)
        if m and m.group(2) and m.group(2).upper() != "DIRECT":
            env[f"{m.group(1).lower()}_proxy"] = m.group(2)
    for key in ("http_proxy", "https_proxy", "no_proxy"):  # the environment wins over the file
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def host_codename() -> str:
    """The host's Debian codename (VERSION_CODENAME in /etc/os-release)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "bookworm"


def cache_dir(kind: str) -> Path:
    """LXCTOOL_CACHE_DIR/<kind> (default /var/cache/lxctool/<kind>), created."""
    d = Path(os.environ.get("LXCTOOL_CACHE_DIR", "/var/cache/lxctool")) / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_step(label: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    """Run a command; on failure raise BuildStepError with its output's last lines."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", env={**os.environ, **(env or {})}, timeout=timeout)
    except FileNotFoundError:
        raise BuildStepError(f"{label}: {argv[0]} is not installed on the host") from None
    except subprocess.TimeoutExpired:
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
    if not cached.is_file():
        src = mirror_for(suite)
        say(f"debootstrap {suite} ({variant}) from the host's source {src.uri} (about a minute; cached after)")
        with tempfile.TemporaryDirectory(prefix="base-", dir=cache_dir("work")) as tmp:
            root = Path(tmp) / "rootfs"
            argv = ["debootstrap", f"--variant={variant}"]
            if src.signed_by and Path(src.signed_by).is_file():
                argv.append(f"--keyring={src.signed_by}")
            try:
                run_step(f"debootstrap {suite}", argv + [suite, str(root), src.uri], env=apt_proxy_env())
            finally:
                unmount_below(root)
            _write_sources(root, suite)
            for f in ("etc/hostname", "etc/resolv.conf"):
                (root / f).unlink(missing_ok=True)
            partial = cached.with_suffix(".partial")
            pack(root, partial)
            partial.rename(cached)  # complete files only: an interrupted run leaves no cache
    dest.parent.mkdir(parents=True, exist_ok=True)
    unpack(cached, dest.parent)
    return dest


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
        if subprocess.run(["umount", m], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", m], capture_output=True)
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
        if self._resolv is not None:
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
