"""The host's own apt configuration: its package sources (one-line `*.list` and deb822
`*.sources`), the entries for a Debian suite, its apt proxy, and its release codename.

lxctool writes no mirror anywhere: Debian images are built from what the host itself uses.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lxctool.core.errors import HostCommandError, PreflightError
from lxctool.host import run

APT_DIR = Path("/etc/apt")


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
        dump = run.run(["apt-config", "dump"], check=False, timeout=30).stdout
    except HostCommandError:
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
