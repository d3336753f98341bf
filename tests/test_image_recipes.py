"""Pure tests: recipe validation and hashing, the host's apt sources and proxy. No daemon, no fakes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lxctool.images import aptsources as deb
from lxctool.core.errors import PreflightError, SpecError
from lxctool.images.recipes import load_recipe

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def images_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCTOOL_IMAGES_DIR", str(tmp_path))
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_shipped_recipe_is_valid_and_debian_ones_derive_from_debian() -> None:
    names = sorted(p.stem for p in (REPO / "images").glob("*.yaml"))
    assert {"busybox", "debian", "nginx", "mariadb", "mediawiki", "influxdb"} <= set(names)
    for name in names:
        recipe = load_recipe(name)
        assert recipe.readiness, f"{name} has no readiness check"
        if name != "busybox":
            assert recipe.root_base() == "debootstrap"
            assert recipe.chain()[0].name == "debian"
    debian = load_recipe("debian")
    assert {"systemd-sysv", "udev", "iproute2"} <= set(debian.packages[0])
    assert debian.variant == "minbase"
    assert any("DHCP=ipv4" in f.content and "Name=eth0" in f.content for f in debian.files)
    assert "systemd-networkd" in debian.services
    wiki = load_recipe("mediawiki")
    # php-fpm goes in before mediawiki so that Apache's PHP module is never pulled in
    order = [p for group in wiki.packages for p in group]
    assert order.index("php-fpm") < order.index("mediawiki")
    assert len(wiki.packages) >= 2 and "mediawiki" not in wiki.packages[0]


def test_every_error_is_reported_at_once_with_its_path(images_dir: Path) -> None:
    write(images_dir, "bad", """
base: debootstrap
debootstrap: {suite: bookworm, variant: tiny, mirror: x}
colour: blue
packages: [nginx, "Not A Package"]
files:
  - {path: relative/file, content: x, mode: "9z"}
  - {path: /etc/x, content: a, source: b}
  - {path: /etc/y, source: missing.txt, owner: "bad owner"}
  - just a string
readiness: 7
properties: {a: [1]}
""")
    with pytest.raises(SpecError) as exc:
        load_recipe("bad")
    text = "\n".join(exc.value.errors)
    for expected in ("bad.yaml: colour: unknown key", "debootstrap.variant: 'tiny' is unknown",
                     "debootstrap.mirror: unknown key", "packages[1]: 'Not A Package' is not a Debian package",
                     "files[0].path: must be an absolute path", "files[0].mode: '9z' is not an octal mode",
                     "files[1]: give exactly one of content or source", "files[2].source:",
                     "files[2].owner: 'bad owner'", "files[3]: must be a mapping", "readiness: must be a command",
                     "properties: must be a mapping"):
        assert expected in text, f"missing {expected!r} in:\n{text}"
    assert len(exc.value.errors) >= 12


def test_missing_and_circular_bases_are_refused(images_dir: Path) -> None:
    write(images_dir, "orphan", "base: nosuchparent\n")
    with pytest.raises(SpecError, match=r"orphan.yaml: base: 'nosuchparent' is no recipe"):
        load_recipe("orphan")
    write(images_dir, "a", "base: b\n")
    write(images_dir, "b", "base: c\n")
    write(images_dir, "c", "base: a\n")
    with pytest.raises(SpecError, match=r"circular \(a -> b -> c -> a\)"):
        load_recipe("a")
    write(images_dir, "self", "base: self\n")
    with pytest.raises(SpecError, match="circular"):
        load_recipe("self")
    with pytest.raises(SpecError, match="NAME: no recipe 'nothing'"):
        load_recipe("nothing")


def test_busybox_base_cannot_install_packages(images_dir: Path) -> None:
    write(images_dir, "bb", "base: busybox\npackages: [nginx]\nservices: [nginx]\n")
    with pytest.raises(SpecError, match="need a Debian base"):
        load_recipe("bb")


def test_hash_follows_the_recipe_and_every_parent(images_dir: Path) -> None:
    write(images_dir, "root", "base: busybox\ndescription: one\n")
    write(images_dir, "mid", "base: root\n")
    write(images_dir, "leaf", "base: mid\nreadiness: 'true'\n")
    leaf1 = load_recipe("leaf").digest()
    assert load_recipe("leaf").digest() == leaf1  # stable
    write(images_dir, "root", "base: busybox\ndescription: two\n")  # a grandparent changes
    leaf2 = load_recipe("leaf").digest()
    assert leaf2 != leaf1
    write(images_dir, "leaf", "base: mid\nreadiness: 'false'\n")  # the recipe itself changes
    assert load_recipe("leaf").digest() not in (leaf1, leaf2)
    assert [r.name for r in load_recipe("leaf").chain()] == ["root", "mid", "leaf"]


def test_readiness_is_inherited_and_a_string_runs_in_sh(images_dir: Path) -> None:
    write(images_dir, "p", "base: busybox\nreadiness: 'test -e /etc/passwd'\n")
    write(images_dir, "c", "base: p\n")
    assert load_recipe("c").readiness == ("sh", "-c", "test -e /etc/passwd")


def test_file_source_is_read_relative_to_the_recipe(images_dir: Path) -> None:
    (images_dir / "motd.txt").write_text("hello\n")
    write(images_dir, "f", "base: busybox\nfiles:\n  - {path: /etc/motd, source: motd.txt, mode: '0600'}\n")
    f = load_recipe("f").files[0]
    assert (f.content, f.mode) == ("hello\n", 0o600)


def test_packages_groups_keep_their_order(images_dir: Path) -> None:
    write(images_dir, "g", "base: debootstrap\npackages:\n  - [php-fpm, php-xml]\n  - [mediawiki]\n")
    assert load_recipe("g").packages == (("php-fpm", "php-xml"), ("mediawiki",))
    write(images_dir, "h", "base: debootstrap\npackages: [a1, b2]\n")
    assert load_recipe("h").packages == (("a1", "b2"),)


def test_one_line_sources_with_options_and_comments() -> None:
    text = """# a comment
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main # trailing
"""
    entries = deb.parse_one_line(text)
    assert [(e.uri, e.suites, e.components, e.signed_by) for e in entries] == [
        ("http://mirror.example/debian", ("bookworm",), ("main", "contrib"), "/usr/share/keyrings/k.gpg"),
        ("http://mirror.example/debian-security", ("bookworm-security",), ("main",), ""),
    ]


def test_deb822_sources_skip_disabled_and_source_only_stanzas() -> None:
    text = """Types: deb deb-src
URIs: http://a.example/debian http://b.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://c.example/debian
Suites: trixie
Components: main
Enabled: no

# comment stanza
Types: deb-src
URIs: http://d.example/debian
Suites: bookworm
Components: main
"""
    entries = deb.parse_deb822(text)
    assert [e.uri for e in entries] == ["http://a.example/debian", "http://b.example/debian"]
    assert entries[0].suites == ("bookworm", "bookworm-updates")
    pairs = deb.debian_sources(entries, "bookworm")
    assert pairs[0][1] == "bookworm" and {s for _, s in pairs} == {"bookworm", "bookworm-updates"}
    assert deb.mirror_for("bookworm", entries).uri == "http://a.example/debian"
    with pytest.raises(PreflightError, match="no entry for 'sid'"):
        deb.mirror_for("sid", entries)


def test_host_sources_read_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://one.example/debian bookworm main\n")
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "x.sources").write_text("Types: deb\nURIs: http://two.example/debian\nSuites: bookworm-updates\n"
                                 "Components: main\n")
    (d / "y.list").write_text("deb http://three.example/debian-security bookworm-security main\n")
    (d / "z.list.disabled").write_text("deb http://never.example/ bookworm main\n")
    uris = [e.uri for e in deb.host_sources(tmp_path)]
    assert uris == ["http://one.example/debian", "http://two.example/debian",
                    "http://three.example/debian-security"]


def test_this_hosts_own_source_is_found() -> None:
    """The real host's apt configuration names a source for its own release."""
    src = deb.mirror_for(deb.host_codename())
    assert src.uri.startswith(("http://", "https://", "file:/"))


def test_apt_proxy_comes_from_apt_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "apt.conf"
    conf.write_text('Acquire::http::Proxy "http://127.0.0.1:3142/";\nAcquire::https::Proxy "DIRECT";\n')
    for key in ("http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("APT_CONFIG", str(conf))
    assert subprocess.run(["apt-config", "dump"], capture_output=True, text=True).returncode == 0
    assert deb.apt_proxy_env() == {"http_proxy": "http://127.0.0.1:3142/"}
    monkeypatch.setenv("http_proxy", "http://127.0.0.2:8080/")  # the environment wins
    assert deb.apt_proxy_env()["http_proxy"] == "http://127.0.0.2:8080/"
    assert "APT_CONFIG" in os.environ


def test_a_suite_the_host_has_no_source_for_is_refused(images_dir: Path) -> None:
    write(images_dir, "old", "base: debootstrap\ndebootstrap: {suite: lxctoolnosuchsuite}\n")
    with pytest.raises(SpecError, match="debootstrap.suite: the host's apt sources have no entry for"):
        load_recipe("old")
