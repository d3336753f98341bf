"""`--help` for every command and group: exit 0, a usage line, and no heavy import on the way."""

from __future__ import annotations

import subprocess
import sys
from typing import Callable

import click
import pytest
from click.testing import Result

from lxctool.cli import cli

FAMILIES = {"launch", "list", "info", "limits", "start", "stop", "restart", "delete", "exec", "doctor",
            "image", "network", "net", "compare", "monitor", "verify", "experiment", "remote", "cluster",
            "dashboard", "up", "down", "plan", "ps", "logs", "stack"}


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path below group, groups included (('image',), ('image', 'build'), ...)."""
    paths = []
    for name, cmd in sorted(group.commands.items()):
        paths.append(prefix + (name,))
        if isinstance(cmd, click.Group):
            paths += command_paths(cmd, prefix + (name,))
    return paths


ALL_COMMANDS = command_paths(cli)


def test_every_family_is_registered() -> None:
    assert FAMILIES <= {path[0] for path in ALL_COMMANDS}
    assert {("image", "build"), ("image", "list"), ("network", "create"), ("net", "check"),
            ("experiment", "run")} <= set(ALL_COMMANDS)


def test_top_level_help_lists_every_family(lxctool: Callable[..., Result]) -> None:
    result = lxctool("--help")
    assert result.exit_code == 0 and result.stdout.startswith("Usage: lxctool [OPTIONS] COMMAND")
    listed = {ln.split()[0] for ln in result.stdout.split("Commands:")[1].splitlines() if ln.strip()}
    assert FAMILIES <= listed
    assert "Exit codes" in result.stdout


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_help_exits_0_with_usage(path: tuple[str, ...], lxctool: Callable[..., Result]) -> None:
    for flag in ("--help", "-h"):
        result = lxctool(*path, flag)
        assert result.exit_code == 0, (result.exit_code, result.output)
        assert result.stdout.startswith(f"Usage: lxctool {' '.join(path)} "), result.stdout[:200]
        assert result.stderr == ""
    # the one-line summary click shows in the parent's listing is real text, not a placeholder
    assert len(result.stdout.splitlines()) >= 4


def test_help_imports_no_heavy_module() -> None:
    # `lxctool --help` must stay fast: pylxd alone costs ~0.3 s here, psutil/matplotlib/yaml more
    code = ("import sys\nfrom click.testing import CliRunner\nfrom lxctool.cli import cli\n"
            "for argv in (['--help'], ['launch', '--help'], ['compare', '--help'], ['image', 'build', '--help']):\n"
            "    assert CliRunner().invoke(cli, argv).exit_code == 0\n"
            "heavy = {'pylxd', 'psutil', 'matplotlib', 'yaml', 'tabulate', 'jinja2', 'jsonschema'}\n"
            "print(sorted(heavy & set(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_version(lxctool: Callable[..., Result]) -> None:
    result = lxctool("--version")
    assert result.exit_code == 0 and result.stdout.startswith("lxctool, version ")
