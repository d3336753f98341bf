"""Bad input, every command family: exit 2, one `lxctool: error: FIELD: ...` line per problem,
nothing on stdout, no traceback. The daemon is unreachable here, so an exit 2 also proves that
the input was refused before lxctool asked LXD anything."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import Result

from cli.conftest import error_lines

# (argv, the FIELD each error line starts with, in any order; one line per problem)
CASES: list[tuple[list[str], list[str]]] = [
    (["launch"], ["NAME"]),
    (["launch", "web1", "--mem", "512XB", "--cpu", "0", "--processes", "0"], ["--mem", "--cpu", "--processes"]),
    (["launch", "web1", "--cpu", "0.5", "--cpu-allowance", "20ms/100ms", "--net-in", "10MB", "--disk-read", "fast"],
     ["--cpu", "--net-in", "--disk-read"]),
    (["launch", "web1", "--publish", "99999:80", "--publish", "80"], ["--publish", "--publish"]),
    (["launch", "web1", "--timeout", "0"], ["--timeout"]),
    (["launch", "web1", "--format", "xml"], ["--format"]),
    (["list", "--format", "xml"], ["--format"]),
    (["list", "--bogus"], ["--bogus"]),
    (["info"], ["NAME"]),
    (["info", "web1", "--format", "yaml"], ["--format"]),
    (["limits", "web1", "--mem", "1XB", "--cpu", "-1", "--net-out", "fast"], ["--mem", "--cpu", "--net-out"]),
    (["limits"], ["NAME"]),
    (["start"], ["NAME..."]),
    (["stop", "web1", "--format", "xml"], ["--format"]),
    (["restart", "--nope", "web1"], ["--nope"]),
    (["delete"], ["NAME..."]),
    (["exec", "web1"], ["COMMAND"]),
    (["doctor", "--format", "html"], ["--format"]),
    (["image", "build"], ["NAME"]),
    (["image", "build", "no-such-recipe"], ["NAME"]),
    (["image", "export", "busybox"], ["FILE"]),
    (["image", "import", "/nonexistent/image.tar.zst"], ["FILE"]),
    (["image", "check", "web1", "--timeout", "-1"], ["--timeout"]),
    (["image", "list", "--format", "xml"], ["--format"]),
    (["network", "create", "lab1"], ["--subnet"]),
    (["network", "create", "Lab_1", "--subnet", "8.8.8.1/24", "--nat", "--domain", "Bad_Domain"],
     ["NAME", "--subnet", "--nat", "--domain"]),
    (["network", "create", "lab1", "--subnet", "10.20.0.1/24", "--dhcp-range", "10.30.0.5-10.30.0.9"],
     ["--dhcp-range"]),
    (["network", "show"], ["NAME"]),
    (["network", "delete"], ["NAME"]),
    (["network", "list", "--format", "xml"], ["--format"]),
    (["net", "check", "--outside", "not-an-address", "--outside", "10.0.0.1:99999"], ["--outside", "--outside"]),
    (["net", "check", "--timeout", "0.1"], ["--timeout"]),
    (["compare", "--interval", "soon", "--samples", "0", "--plot", "usage.jpg"], ["--interval", "--samples", "--plot"]),
    (["compare", "--watch", "--format", "json"], ["--watch"]),
    (["compare", "--format", "xml"], ["--format"]),
    (["monitor", "--database", "lxd"], ["--influx-url"]),
    (["monitor", "--influx-url", "ftp://x", "--database", "no way", "--interval", "-1"],
     ["--influx-url", "--database", "--interval"]),
    (["verify", "web1", "--only", "cpu,gpu,disco"], ["--only"]),
    (["verify", "web1", "--duration", "soon"], ["--duration"]),
    (["experiment", "run"], ["FILE"]),
    (["experiment", "run", "/nonexistent/sweep.yaml"], ["/nonexistent/sweep.yaml"]),
    (["remote", "add", "lab", "notaurl"], ["URL"]),
    (["remote", "add"], ["NAME"]),
    (["cluster", "list", "--format", "xml"], ["--format"]),
    (["dashboard", "--bogus"], ["--bogus"]),
    (["up"], ["-f"]),
    (["down", "--bogus"], ["--bogus"]),
    (["plan", "-f", "/nonexistent/stack.yaml"], ["-f"]),
    (["ps"], ["-f"]),
    (["logs"], ["SERVICE"]),
    (["stack", "list", "--format", "xml"], ["--format"]),
    (["verify"], ["NAME"]),
    (["restart"], ["NAME..."]),
    (["bogus-command"], ["No such command"]),
]


def assert_refused(result: Result, fields: list[str]) -> None:
    """Exit 2, stdout empty, one error line per expected field, nothing but error/hint lines."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith(("lxctool: error: ", "lxctool: hint: ")) for ln in lines), lines
    errors = error_lines(result)
    assert len(errors) == len(fields), (fields, errors)
    unmatched = list(errors)
    for field in fields:
        hit = next((ln for ln in unmatched if ln.startswith(f"lxctool: error: {field}")), None)
        assert hit is not None, (field, errors)
        unmatched.remove(hit)


@pytest.mark.parametrize("argv,fields", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_exits_2_one_line_per_problem(argv: list[str], fields: list[str],
                                                 lxctool: Callable[..., Result]) -> None:
    assert_refused(lxctool(*argv), fields)


def test_every_family_has_a_bad_input_case() -> None:
    from cli.test_help import FAMILIES

    assert FAMILIES <= {argv[0] for argv, _ in CASES}


def test_an_error_line_says_what_is_accepted(lxctool: Callable[..., Result]) -> None:
    result = lxctool("launch", "web1", "--mem", "512XB")
    assert error_lines(result) == ["lxctool: error: --mem: '512XB' is not a size; use a whole number with "
                                   "B, kB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. 512MB)"]
    choice = lxctool("list", "--format", "xml")
    assert error_lines(choice)[0].startswith("lxctool: error: --format: 'xml' is not one of 'table', 'json', 'csv'")
    assert "lxctool: hint: see 'lxctool list --help'" in choice.stderr


def test_bad_recipe_file_reports_every_problem_with_its_path(tmp_path: Path,
                                                              lxctool: Callable[..., Result]) -> None:
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("base: busybox\npackages: [curl]\ncolour: blue\nfiles: [{content: x}]\n")
    result = lxctool("image", "build", str(recipe))
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert len(error_lines(result)) >= 3, result.stderr


def test_bad_experiment_file_reports_every_problem(tmp_path: Path, lxctool: Callable[..., Result]) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("limit: gpu\nvalues: []\nrepeats: 0\ncolour: blue\n")
    result = lxctool("experiment", "run", str(sweep), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert len(error_lines(result)) >= 3, result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_stack_file_reports_every_problem_with_its_path(tmp_path: Path, lxctool: Callable[..., Result]) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text("services:\n  web:\n    image: 5\n    colour: blue\n")
    result = lxctool("plan", "-f", str(stack))
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    errors = error_lines(result)
    assert len(errors) >= 3, result.stderr
    assert any(ln.startswith("lxctool: error: services.web.colour: ") for ln in errors), errors
    assert any(ln.startswith("lxctool: error: services.web.image: ") for ln in errors), errors
