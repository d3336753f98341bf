"""Integration tests: recipes built into real LXD images on this host, launched and checked.

Rebuild behaviour runs on throw-away recipes (aliases im<run>-*) in a temporary images folder
(LXCTOOL_IMAGES_DIR), deriving from busybox or from the shipped `debian`; the shipped `debian`
and `nginx` images are built once and kept (their hash makes a re-run skip them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import REPO, lxctool_bin, run_cli

pytestmark = pytest.mark.integration

WORK = Path("/var/cache/lxctool/work")
# straight to the project's own container: never through a proxy from the environment
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def mounts() -> list[str]:
    """Mounts in lxctool's cache (where builds mount /proc, /sys, /dev); other tests' mounts
    elsewhere on the host come and go meanwhile."""
    return sorted(line for line in Path("/proc/mounts").read_text().splitlines() if "/lxctool" in line
                  and "/storage-pools/" not in line)


def work_entries() -> set[str]:
    return {p.name for p in WORK.iterdir()} if WORK.is_dir() else set()


class Recipes:
    """A temporary images folder whose aliases are removed at teardown."""

    def __init__(self, lxd: Any, folder: Path, prefix: str) -> None:
        self.lxd, self.folder, self.prefix = lxd, folder, prefix
        self.env = {"LXCTOOL_IMAGES_DIR": str(folder)}
        for shipped in ("debian.yaml", "nginx.yaml"):  # same text, same hash: parents resolve here
            shutil.copy(REPO / "images" / shipped, folder / shipped)

    def write(self, tag: str, text: str) -> str:
        name = f"{self.prefix}-{tag}"
        (self.folder / f"{name}.yaml").write_text(text)
        return name

    def cli(self, *args: str, timeout: float = 900) -> Any:
        return run_cli(*args, env=self.env, timeout=timeout)

    def target(self, alias: str) -> str | None:
        a = self.lxd.image_alias(alias)
        return a["target"] if a else None

    def cleanup(self) -> None:
        for img in self.lxd.images():
            names = [a["name"] for a in img.get("aliases") or []]
            mine = [n for n in names if n.startswith(self.prefix + "-")]
            recipe = (img.get("properties") or {}).get("lxctool.recipe", "")
            for n in mine:
                self.lxd.delete_alias(n)
            if (mine and len(mine) == len(names)) or (not names and recipe.startswith(self.prefix + "-")):
                self.lxd.delete_image(img["fingerprint"])


@pytest.fixture
def recipes(lxd: Any, run_prefix: str, tmp_path: Path) -> Iterator[Recipes]:
    r = Recipes(lxd, tmp_path, "im" + run_prefix[1:])
    try:
        yield r
    finally:
        r.cleanup()


BUSYBOX_CHILD = """base: busybox
description: {desc}
files:
  - path: /etc/inittab
    content: |
      ::sysinit:/bin/sh -c 'ip link set lo up; ip link set eth0 up'
      ::respawn:/sbin/udhcpc -f -i eth0 -s /etc/udhcpc.sh
  - path: /etc/udhcpc.sh
    mode: "0755"
    content: |
      #!/bin/sh
      [ "$1" = bound ] && ifconfig "$interface" "$ip" netmask "${{subnet:-255.255.255.0}}" up
      exit 0
  - path: /etc/version
    content: "{desc}"
readiness: "grep -q {desc} /etc/version"
"""


def test_unchanged_skips_changed_recipe_parent_and_force_rebuild(recipes: Recipes) -> None:
    parent = recipes.write("p", BUSYBOX_CHILD.format(desc="v1"))
    child = recipes.write("c", f"base: {parent}\nfiles:\n  - {{path: /etc/child, content: one}}\n")
    first = recipes.cli("image", "build", child, "--format", "json")
    assert first.returncode == 0, first.stderr
    assert "building it first" in first.stderr and "[" in first.stderr  # phases with elapsed time
    p1, c1 = recipes.target(parent), recipes.target(child)
    assert p1 and c1 and p1 != c1

    again = recipes.cli("image", "build", child, "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout)["built"] is False
    assert "up to date" in again.stderr and recipes.target(child) == c1

    forced = recipes.cli("image", "build", child, "--force", "--format", "json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["built"] is True
    c2 = recipes.target(child)
    assert c2 and c2 != c1 and recipes.target(parent) == p1  # --force rebuilds only the one named
    assert recipes.lxd.image(c1) is None  # the replaced image does not pile up

    recipes.write("c", f"base: {parent}\nfiles:\n  - {{path: /etc/child, content: two}}\n")
    listed = {r["alias"]: r for r in json.loads(recipes.cli("image", "list", "--format", "json").stdout)}
    assert listed[child]["status"] == "recipe changed"
    changed = recipes.cli("image", "build", child, "--format", "json")
    assert changed.returncode == 0 and json.loads(changed.stdout)["built"] is True
    c3 = recipes.target(child)
    assert c3 not in (c1, c2) and recipes.target(parent) == p1

    recipes.write("p", BUSYBOX_CHILD.format(desc="v2"))  # the parent changes
    listed = {r["alias"]: r for r in json.loads(recipes.cli("image", "list", "--format", "json").stdout)}
    assert listed[child]["status"] == "parent changed" and listed[parent]["status"] == "recipe changed"
    rebuilt = recipes.cli("image", "build", child, "--format", "json")
    assert rebuilt.returncode == 0 and json.loads(rebuilt.stdout)["built"] is True
    assert recipes.target(parent) != p1 and recipes.target(child) not in (c1, c2, c3)
    listed = {r["alias"]: r for r in json.loads(recipes.cli("image", "list", "--format", "json").stdout)}
    assert listed[child]["status"] == listed[parent]["status"] == "current"
    assert listed[child]["size_bytes"] > 500_000 and listed[child]["built_at"]


def test_export_delete_import_gives_a_launchable_image(recipes: Recipes, containers: Any,
                                                       tmp_path: Path) -> None:
    name = recipes.write("e", BUSYBOX_CHILD.format(desc="exported"))
    assert recipes.cli("image", "build", name).returncode == 0
    fingerprint = recipes.target(name)
    out = tmp_path / "carry" / f"{name}.tar.zst"
    out.parent.mkdir()
    exported = recipes.cli("image", "export", name, str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_size > 500_000 and [p.name for p in out.parent.iterdir()] == [out.name]

    deleted = recipes.cli("image", "delete", name)
    assert deleted.returncode == 0 and recipes.target(name) is None
    assert recipes.lxd.image(fingerprint) is None
    assert recipes.cli("image", "delete", name).returncode == 2

    imported = recipes.cli("image", "import", str(out), "--format", "json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {"name": name, "fingerprint": fingerprint}
    img = recipes.lxd.image(fingerprint)
    assert img["properties"]["lxctool.recipe"] == name and img["properties"]["lxctool.hash"]
    skipped = recipes.cli("image", "build", name, "--format", "json")  # the hash travelled with it
    assert json.loads(skipped.stdout)["built"] is False

    cname, row = containers.launch("--image", name, tag="imp")
    assert row["state"] == "RUNNING" and row["ipv4"]
    check = run_cli("image", "check", cname, "--format", "json")
    assert check.returncode == 0 and json.loads(check.stdout)["ready"] is True


def test_failed_build_keeps_old_image_alias_and_mounts(recipes: Recipes, containers: Any) -> None:
    """A Debian-derived recipe: a good build, then a missing package and a failing command."""
    built = run_cli("image", "build", "debian", timeout=900)  # the shipped one; skipped when current
    assert built.returncode == 0, built.stderr
    good = """base: debian
files:
  - {path: /etc/lxctool-test, content: good, owner: "nobody:nogroup"}
commands:
  # services never start during a build: policy-rc.d answers 101 (action forbidden)
  - test -x /usr/sbin/policy-rc.d; /usr/sbin/policy-rc.d nginx start || test $? -eq 101
"""
    name = recipes.write("d", good)
    before_mounts, before_work = mounts(), work_entries()
    ok = recipes.cli("image", "build", name)
    assert ok.returncode == 0, ok.stderr
    old = recipes.target(name)
    assert mounts() == before_mounts and work_entries() == before_work

    recipes.write("d", good + "packages: [lxctool-no-such-package]\n")
    bad = recipes.cli("image", "build", name)
    assert bad.returncode == 1
    assert f"{name}: apt-get install lxctool-no-such-package: failed" in bad.stderr
    assert "Unable to locate package lxctool-no-such-package" in bad.stderr  # the output's tail
    assert "Traceback" not in bad.stderr
    assert recipes.target(name) == old and recipes.lxd.image(old) is not None
    assert mounts() == before_mounts and work_entries() == before_work

    recipes.write("d", good + "commands:\n  - echo boom-output; exit 3\n")
    failing = recipes.cli("image", "build", name)
    assert failing.returncode == 1 and f"{name}: commands[0]: failed (exit 3)" in failing.stderr
    assert "boom-output" in failing.stderr
    assert recipes.target(name) == old and mounts() == before_mounts and work_entries() == before_work

    cname, row = containers.launch("--image", name, tag="deb")  # the old image still launches
    assert row["ipv4"]
    got = run_cli("exec", cname, "--", "sh", "-c", "cat /etc/lxctool-test; echo; stat -c %U /etc/lxctool-test; "
                  "test -e /usr/sbin/policy-rc.d && echo policy-left; cat /etc/hostname 2>/dev/null; true")
    assert got.stdout.split() == ["good", "nobody"]


def test_invalid_recipe_is_refused_before_any_change(recipes: Recipes, snapshot: Any) -> None:
    name = recipes.write("bad", "base: nowhere\ncolour: red\npackages: [BAD NAME]\n")
    before, before_mounts = snapshot(), mounts()
    proc = recipes.cli("image", "build", name)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("lxctool: error: ") for line in lines) and len(lines) == 3
    assert f"{name}.yaml: colour: unknown key" in proc.stderr and "base: 'nowhere' is no recipe" in proc.stderr
    # images and aliases as they were (the whole-host snapshot also holds other tests' objects)
    assert snapshot()["images"] == before["images"] and mounts() == before_mounts
    assert recipes.target(name) is None


def test_launch_names_the_build_command_for_an_unbuilt_recipe(recipes: Recipes, containers: Any,
                                                              snapshot: Any) -> None:
    name = recipes.write("u", BUSYBOX_CHILD.format(desc="unbuilt"))
    cname = containers.name("u")
    before = snapshot()
    refused = recipes.cli("launch", cname, "--image", name)
    assert refused.returncode == 2 and snapshot()["images"] == before["images"]
    assert recipes.lxd.instance(cname) is None
    assert f"recipe '{name}' is not built yet; build it with `lxctool image build {name}`" in refused.stderr
    unknown = recipes.cli("launch", cname, "--image", "im-nowhere", "--build")
    assert unknown.returncode == 2 and "no image or recipe 'im-nowhere'" in unknown.stderr
    # --build is an op of the plan: a launch refused for another reason builds nothing
    bad = recipes.cli("launch", cname, "--image", name, "--build", "--mem", "1XB")
    assert bad.returncode == 2 and recipes.target(name) is None
    bad = recipes.cli("launch", "bad_name", "--image", name, "--build")
    assert bad.returncode == 2 and recipes.target(name) is None
    dry = recipes.cli("launch", cname, "--image", name, "--build", "--dry-run")
    assert dry.returncode == 0 and f"build-image {name}" in dry.stdout and recipes.target(name) is None
    launched = recipes.cli("launch", cname, "--image", name, "--build", "--format", "json")
    assert launched.returncode == 0, launched.stderr
    assert json.loads(launched.stdout)["ipv4"] and recipes.target(name)


def test_debian_and_nginx_build_launch_and_answer(lxd: Any, containers: Any) -> None:
    """CI's real chain: debootstrap (cached) -> debian -> nginx; nginx answers HTTP 200 from the host."""
    built = run_cli("image", "build", "nginx", timeout=1200)
    assert built.returncode == 0, built.stderr
    for alias in ("debian", "nginx"):
        img = lxd.image(lxd.image_alias(alias)["target"])
        assert img["properties"]["lxctool.recipe"] == alias
    name, row = containers.launch("--image", "nginx", tag="ng")
    assert row["state"] == "RUNNING" and row["ipv4"]
    with DIRECT.open(f"http://{row['ipv4'][0]}/", timeout=10) as resp:
        assert resp.status == 200 and b"nginx" in resp.read()
    check = run_cli("image", "check", name, "--format", "json")
    assert check.returncode == 0 and json.loads(check.stdout)["ready"] is True
    stopped = run_cli("exec", name, "--", "systemctl", "stop", "nginx")
    assert stopped.returncode == 0
    failing = run_cli("image", "check", name, "--timeout", "2")
    assert failing.returncode == 3 and "readiness check still failing" in failing.stderr
    # networkd got the lease on eth0; the container keeps LXD's name, not the build host's
    inside = run_cli("exec", name, "--", "sh", "-c", "hostname; ip -4 -o addr show eth0; "
                     "systemctl is-active systemd-networkd")
    assert inside.returncode == 0
    assert inside.stdout.split()[0] == name and row["ipv4"][0] in inside.stdout
    assert inside.stdout.split()[-1] == "active"
    # each container has its own machine-id (the image ships an empty one)
    other, _ = containers.launch("--image", "debian", tag="deb")
    ids = {run_cli("exec", c, "--", "cat", "/etc/machine-id").stdout.strip() for c in (name, other)}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["busybox", "debian", "nginx", "mariadb", "mediawiki", "influxdb"])
def test_every_shipped_recipe_builds_and_passes_its_readiness_check(recipe: str, lxd: Any, containers: Any) -> None:
    built = run_cli("image", "build", recipe, timeout=1800)
    assert built.returncode == 0, built.stderr
    name, row = containers.launch("--image", recipe, tag=recipe[:4])
    assert row["ipv4"]
    check = run_cli("image", "check", name, "--format", "json")
    assert check.returncode == 0 and json.loads(check.stdout)["ready"] is True, check.stdout + check.stderr
    if recipe == "mediawiki":
        with DIRECT.open(f"http://{row['ipv4'][0]}/index.php", timeout=20) as resp:
            assert resp.status == 200 and b"MediaWiki" in resp.read()
        apache = run_cli("exec", name, "--", "sh", "-c", "dpkg -l | grep -c '^ii  apache2' || true")
        assert apache.stdout.strip() == "0"


def test_two_builds_of_one_recipe_at_once_build_it_once(recipes: Recipes) -> None:
    name = recipes.write("twice", BUSYBOX_CHILD.format(desc="twice"))
    env = {**os.environ, **recipes.env}
    procs = [subprocess.Popen([lxctool_bin(), "image", "build", name, "--format", "json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    built = sorted(json.loads(out)["built"] for out, _ in outs)
    assert built == [False, True]  # the second waited for the first, then found it current
    images = [i for i in recipes.lxd.images() if (i.get("properties") or {}).get("lxctool.recipe") == name]
    assert len(images) == 1 and images[0]["fingerprint"] == recipes.target(name)


@pytest.mark.slow
def test_mediawiki_on_a_fresh_machine(recipes: Recipes, containers: Any, tmp_path: Path) -> None:
    """The issue's 'done when', as a new user: no cached base, no debian/nginx images yet (a
    renamed copy of the shipped chain stands for them), then build mediawiki and launch it."""
    d, n, w = (f"{recipes.prefix}-{x}" for x in ("debian", "nginx", "wiki"))
    shipped = REPO / "images"
    (recipes.folder / f"{d}.yaml").write_text((shipped / "debian.yaml").read_text())
    (recipes.folder / f"{n}.yaml").write_text((shipped / "nginx.yaml").read_text().replace("base: debian", f"base: {d}"))
    (recipes.folder / f"{w}.yaml").write_text((shipped / "mediawiki.yaml").read_text().replace("base: nginx", f"base: {n}"))
    cache = tmp_path / "cache"
    recipes.env["LXCTOOL_CACHE_DIR"] = str(cache)
    try:
        built = recipes.cli("image", "build", w, timeout=1800)
        assert built.returncode == 0, built.stderr
        for phase in ("debootstrap", f"{d}: installing systemd-sysv", f"{n}: installing nginx",
                      f"{w}: installing mediawiki", f"{w}: done"):
            assert phase in built.stderr, phase
        name, row = containers.launch("--image", w, tag="wiki")  # waits for the readiness check
        with DIRECT.open(f"http://{row['ipv4'][0]}/index.php", timeout=20) as resp:
            assert resp.status == 200 and b"MediaWiki" in resp.read()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
