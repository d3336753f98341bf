"""Pure (no daemon): host/run.py, the one door to host processes."""

from __future__ import annotations

import pytest

from lxctool.core.errors import HostCommandError, LxctoolError
from lxctool.host import run


def test_run_captures_output() -> None:
    done = run.run(["sh", "-c", 'echo out; echo err >&2; echo "$LXCTOOL_T"'], env={"LXCTOOL_T": "set"})
    assert done.ok and done.stdout == "out\nset\n" and done.stderr == "err\n"
    assert run.run(["sh", "-c", "echo a; echo b >&2"], merge_stderr=True).stdout == "a\nb\n"
    assert run.run(["cat"], input="fed").stdout == "fed"


def test_failure_is_an_lxctool_error_with_the_tools_last_line() -> None:
    with pytest.raises(HostCommandError) as exc:
        run.run(["sh", "-c", "echo noise >&2; echo 'tc: no such device' >&2; exit 4"])
    assert isinstance(exc.value, LxctoolError) and exc.value.exit_code == 1
    assert exc.value.message == "sh -c echo noise >&2; echo 'tc: no such device' >&2; exit 4 failed (exit 4): " \
                                "tc: no such device"
    assert exc.value.returncode == 4 and exc.value.argv[0] == "sh"
    assert run.run(["false"], check=False).returncode == 1 and not run.succeeds(["false"])


def test_missing_tool_and_timeout() -> None:
    with pytest.raises(run.ToolMissing, match="no-such-tool-x is not installed on the host"):
        run.run(["no-such-tool-x"], check=False)
    assert not run.succeeds(["no-such-tool-x"]) and run.which("no-such-tool-x") is None
    with pytest.raises(run.ToolTimeout, match="still running after 0.2s"):
        run.run(["sleep", "5"], timeout=0.2)


def test_argument_lists_reach_the_program_unparsed() -> None:
    tricky = "a b; echo injected $(id) 'q'"
    assert run.run(["printf", "%s", tricky]).stdout == tricky


def test_start_in_background() -> None:
    proc = run.start(["sh", "-c", "read x; echo got $x"], stdin=run.PIPE, stdout=run.PIPE)
    out, _ = proc.communicate(b"1\n", timeout=10)
    assert proc.returncode == 0 and out == b"got 1\n"
    with pytest.raises(run.ToolMissing):
        run.start(["no-such-tool-x"])
