"""An unreachable daemon (LXCTOOL_SOCKET names no socket): every command family exits 1 with one
clear error line naming the socket (plus a hint how to start it), no traceback, no data on stdout.
`exec` says the same and exits 125 (lxctool could not run the command); `doctor` reports it in
its table and exits 1."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import Result

from cli.conftest import DEAD_SOCKET, error_lines

REPO = Path(__file__).resolve().parents[2]
# (up and down are left out: with the daemon down they still leave /run/lxctool/stacks/NAME/lock)

COMMANDS: list[list[str]] = [
    ["launch", "web1"],
    ["launch", "web1", "--cpu", "1", "--mem", "256MB", "--no-wait"],
    ["launch", "web1", "--dry-run"],
    ["list"],
    ["list", "--all", "--format", "json"],
    ["info", "web1"],
    ["limits", "web1"],
    ["limits", "web1", "--mem", "1GB"],
    ["start", "web1"],
    ["stop", "web1", "web2"],
    ["restart", "web1"],
    ["delete", "web1"],
    ["delete", "web1", "--force"],
    ["image", "list"],
    ["image", "delete", "busybox"],
    ["image", "check", "web1"],
    ["image", "build", "busybox"],
    ["network", "create", "lab1", "--subnet", "10.231.7.1/24"],
    ["network", "list"],
    ["network", "show", "lxctool0"],
    ["network", "delete", "lab1"],
    ["net", "check"],
    ["compare"],
    ["compare", "web1", "--format", "json", "--interval", "0.1"],
    ["verify", "web1"],
    ["cluster", "list"],
    ["dashboard", "--listen", "127.0.0.1:0"],
    ["plan", "-f", str(REPO / "examples" / "mediawiki" / "stack.yaml")],
    ["ps", "-f", str(REPO / "examples" / "mediawiki" / "stack.yaml")],
    ["stack", "list"],
]


def assert_one_clear_line(result: Result) -> None:
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr
    assert DEAD_SOCKET in errors[0] and "not answering" in errors[0], errors
    assert all(ln.startswith("lxctool: ") for ln in result.stderr.splitlines() if ln.strip()), result.stderr


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_unreachable_daemon_exits_1_with_one_line(argv: list[str], lxctool: Callable[..., Result]) -> None:
    result = lxctool(*argv)
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    assert_one_clear_line(result)
    assert "lxctool: hint: start it with" in result.stderr


def test_exec_exits_125_when_it_cannot_run(lxctool: Callable[..., Result]) -> None:
    result = lxctool("exec", "web1", "--", "true")
    assert result.exit_code == 125 and result.stdout == ""
    assert_one_clear_line(result)


def test_doctor_reports_the_daemon_missing_and_exits_1(lxctool: Callable[..., Result]) -> None:
    result = lxctool("doctor", "--format", "json")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    import json

    rows = {r["check"]: r for r in json.loads(result.stdout)}
    missing = [r for r in rows.values() if r["status"] == "missing" and r["needed"]]
    assert missing and any(DEAD_SOCKET in r["detail"] or "daemon" in r["check"].lower() for r in missing), rows


def test_image_export_and_import(tmp_path: Path, lxctool: Callable[..., Result]) -> None:
    export = lxctool("image", "export", "busybox", str(tmp_path / "busybox.tar.zst"))
    assert export.exit_code == 1 and export.stdout == ""
    assert_one_clear_line(export)
    assert not (tmp_path / "busybox.tar.zst").exists()
    fake = tmp_path / "fake.tar.zst"
    fake.write_bytes(b"not an image")
    imported = lxctool("image", "import", str(fake))
    assert imported.exit_code == 1 and imported.stdout == ""
    assert_one_clear_line(imported)


def test_experiment_run(tmp_path: Path, lxctool: Callable[..., Result]) -> None:
    result = lxctool("experiment", "run", str(REPO / "experiments" / "processes.yaml"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.stdout == ""
    assert_one_clear_line(result)


class _FakeInflux(http.server.BaseHTTPRequestHandler):
    """Answers like InfluxDB 1.x on loopback, so that monitor gets as far as asking LXD."""

    def _answer(self) -> None:
        self.send_response(204 if self.path.startswith(("/ping", "/write")) else 200)
        self.end_headers()
        if self.path.startswith("/query"):
            self.wfile.write(b'{"results":[{"statement_id":0}]}')

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def influx_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeInflux)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_monitor(influx_url: str, lxctool: Callable[..., Result]) -> None:
    result = lxctool("monitor", "--influx-url", influx_url, "--database", "lxd", "--interval", "0.1",
                     "--samples", "1")
    assert result.exit_code == 1 and result.stdout == ""
    assert_one_clear_line(result)


def test_an_influxdb_that_does_not_answer_is_one_line_too(lxctool: Callable[..., Result]) -> None:
    result = lxctool("monitor", "--influx-url", "http://127.0.0.1:9", "--database", "lxd")
    assert result.exit_code == 1 and result.stdout == ""
    errors = error_lines(result)
    assert len(errors) == 1 and "InfluxDB at http://127.0.0.1:9 is not answering" in errors[0], result.stderr
