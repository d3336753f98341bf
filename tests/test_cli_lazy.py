"""The CLI imports only the command module(s) a command needs; the map that says which must be true."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from lxctool.cli import COMMAND_MODULES, MODULES


def test_command_map_names_every_command_and_its_module() -> None:
    registered: dict[str, str] = {}
    for module in MODULES:
        group = click.Group()
        importlib.import_module(f"lxctool.cli.{module}").register(group)
        for name in group.commands:
            registered[name] = module
    assert sorted(registered) == sorted(COMMAND_MODULES)
    for name, module in registered.items():
        assert module in COMMAND_MODULES[name], name
    # stacks changes exec/restart/verify, so it is only ever loaded after instances and verify
    for mods in COMMAND_MODULES.values():
        if "stacks" in mods:
            assert {"instances", "verify"} <= set(mods)


def _loaded_after(args: list[str]) -> list[str]:
    code = ("import sys; from click.testing import CliRunner; from lxctool.cli import cli; "
            f"r = CliRunner().invoke(cli, {args!r}); assert r.exit_code == 0, r.output; "
            "print(','.join(sorted(m for m in sys.modules if m.startswith('lxctool.cli.'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # command modules only (shared helpers such as cli.params load with any of them)
    return [m for m in proc.stdout.strip().split(",") if m.rsplit(".", 1)[-1] in MODULES]


def test_launch_imports_only_its_module_and_help_lists_all() -> None:
    assert _loaded_after(["launch", "--help"]) == ["lxctool.cli.instances"]
    assert len(_loaded_after(["--help"])) == len(MODULES)


def test_exec_learns_stack_files_whatever_loaded_first() -> None:
    from click.testing import CliRunner
    from lxctool.cli import cli

    assert CliRunner().invoke(cli, ["launch", "--help"]).exit_code == 0
    out = CliRunner().invoke(cli, ["exec", "--help"]).output
    assert "--file" in out
