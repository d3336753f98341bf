"""CLI tests of `lxctool image ...`: help, refusals with exit 2 and one line per problem, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import run_cli
from lxctool.cli import cli

SUBCOMMANDS = ("build", "list", "delete", "export", "import", "check")


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_image_command_has_help(sub: str) -> None:
    result = CliRunner().invoke(cli, ["image", sub, "--help"])
    assert result.exit_code == 0 and "Usage: lxctool image" in result.output and len(result.output) > 150


def test_image_group_help_names_the_commands() -> None:
    out = CliRunner().invoke(cli, ["image", "--help"]).output
    assert all(sub in out for sub in SUBCOMMANDS)
    assert "LXCTOOL_IMAGES_DIR" in out


def test_unknown_recipe_is_refused_with_the_choices(tmp_path: Path) -> None:
    proc = run_cli("image", "build", "no-such-recipe")
    assert proc.returncode == 2
    assert proc.stderr.startswith("lxctool: error: NAME: no recipe 'no-such-recipe'; use one of: busybox, debian")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bad_recipe_file_by_path_lists_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("base: [1]\nfiles: {}\nservices: nginx\n")
    proc = run_cli("image", "build", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["lxctool: error: r.yaml: base: missing; use busybox, debootstrap or a recipe name",
                     "lxctool: error: r.yaml: services: must be a list of strings",
                     "lxctool: error: r.yaml: files: must be a list of mappings with path and content or source"]
    path.write_text("base: busybox\n  bad: indent\n")
    proc = run_cli("image", "build", str(path))
    assert proc.returncode == 2 and "r.yaml: not valid YAML" in proc.stderr


def test_refusals_about_images_and_containers(lxd: Any, tmp_path: Path, run_prefix: str) -> None:
    missing = f"im{run_prefix[1:]}-missing"
    for args in (("image", "delete", missing), ("image", "export", missing, str(tmp_path / "x.tar")),
                 ("image", "check", missing)):
        proc = run_cli(*args)
        assert proc.returncode == 2, args
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("lxctool: error: NAME: no "), proc.stderr
    nowhere = run_cli("image", "export", "busybox", str(tmp_path / "no" / "dir" / "x.tar"))
    assert nowhere.returncode == 2 and "FILE: folder" in nowhere.stderr
    assert list(tmp_path.iterdir()) == []


def test_importing_a_file_that_is_no_image_fails_cleanly(lxd: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"this is not an image" * 100)
    before = sorted(i["fingerprint"] for i in lxd.images())
    proc = run_cli("image", "import", str(junk))
    assert proc.returncode == 1 and proc.stderr.startswith("lxctool: error: ")
    assert "Traceback" not in proc.stderr
    assert sorted(i["fingerprint"] for i in lxd.images()) == before


def test_list_shows_busybox_as_built_from_its_recipe(lxd: Any) -> None:
    proc = run_cli("image", "list", "--format", "json")
    assert proc.returncode == 0
    rows = {r["alias"]: r for r in json.loads(proc.stdout)}
    assert rows["busybox"]["recipe"] == "busybox" and rows["busybox"]["status"] == "current"
    assert rows["busybox"]["size_bytes"] > 100_000
    csv = run_cli("image", "list", "--format", "csv").stdout.splitlines()
    assert csv[0] == "alias,recipe,fingerprint,size_bytes,built_at,status"
