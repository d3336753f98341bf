"""Inputs that used to be accepted and then did the wrong thing (issue 11, item 7).

Each is now a clean refusal (exit 2, one line naming the field, nothing changed) or, for a
failure while acting, a clean one-line error with no traceback and no secret in it.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import run_cli


def _one_error(proc: Any, code: int, *needles: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("lxctool: error: ")]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("option,rate,needle", [
    ("--net-out", "1bit", "8kbit to 4Gbit"), ("--net-in", "7bit", "8kbit to 4Gbit"),
    ("--net-out", "10Gbit", "htb stops shaping"), ("--net-in", "1Tbit", "8kbit to 4Gbit"),
    ("--net-out", "10001bit", "multiple of 8bit"), ("--net-out", "nanMbit", "not a network rate"),
])
def test_rates_tc_cannot_shape_are_refused(option: str, rate: str, needle: str) -> None:
    _one_error(run_cli("launch", "never-made", option, rate), 2, option, needle)
    _one_error(run_cli("limits", "never-made", option, rate), 2, option)


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-inf"])
def test_non_finite_durations_are_refused(value: str) -> None:
    _one_error(run_cli("verify", "never-made", "--duration", value), 2, "--duration")
    _one_error(run_cli("launch", "never-made", "--timeout", value), 2, "--timeout")
    _one_error(run_cli("compare", "--interval", value, "--samples", "1"), 2, "--interval")


@pytest.mark.parametrize("value", ["1" + "0" * 500 + "MB", "99999999999999999999TB", "0.5B"])
def test_absurd_sizes_are_refused(value: str) -> None:
    _one_error(run_cli("launch", "never-made", "--mem", value), 2, "--mem")


def test_exec_env_without_equals_is_refused() -> None:
    _one_error(run_cli("exec", "never-made", "--env", "NOEQUALS", "--", "true"), 2, "--env", "NOEQUALS")


def test_compare_plot_into_a_missing_folder(tmp_path: Path) -> None:
    _one_error(run_cli("compare", "--samples", "1", "--plot", str(tmp_path / "no" / "x.png")), 2, "--plot")


def test_url_credentials_never_printed() -> None:
    secret = "s3cr3t" + secrets.token_hex(4)
    for url in (f"http://user:{secret}@127.0.0.1:9", f"http://user:{secret}@127.0.0.1:99999",
                f"ftp://user:{secret}@127.0.0.1/", f"http://user:{secret}@127.0.0.1:9/?q=1"):
        proc = run_cli("monitor", "--influx-url", url, "--database", "d", "--samples", "1", timeout=60)
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
        assert secret not in proc.stderr + proc.stdout, proc.stderr
        assert "***@127.0.0.1" in proc.stderr or "127.0.0.1" in proc.stderr, proc.stderr


def test_redact_helpers() -> None:
    from lxctool.core.redact import redact_text, redact_url, split_credentials

    assert redact_url("http://u:pw@h:1/x?y=1") == "http://***@h:1/x?y=1"
    assert redact_url("http://h:1/x") == "http://h:1/x"
    assert redact_text("failed: https://a:b@c/d and http://e@f") == "failed: https://***@c/d and http://***@f"
    assert split_credentials("http://u%40x:p%3Aw@h:8086") == ("http://h:8086", ("u@x", "p:w"))


@pytest.fixture
def fake_socket(tmp_path: Path) -> Iterator[Any]:
    """A throwaway unix socket server (started and stopped here) answering whatever it is told."""
    path = str(tmp_path / "not-lxd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    reply = {"bytes": b""}
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(reply["bytes"])
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def answer(data: bytes) -> str:
        reply["bytes"] = data
        return path

    try:
        yield answer
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.2\r\n", b"\x00\x01\x02garbage", b"",
                                    b"HTTP/1.0 200 OK\r\n\r\n[1, 2]", b"HTTP/1.0 200 OK\r\n\r\nnot json"])
def test_a_socket_that_is_not_lxd(fake_socket: Any, answer: bytes) -> None:
    sock = fake_socket(answer)
    proc = run_cli("list", env={"LXCTOOL_SOCKET": sock}, timeout=60)
    _one_error(proc, 1)


def test_a_path_that_is_not_a_socket(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    _one_error(run_cli("list", env={"LXCTOOL_SOCKET": str(plain)}), 1, "not answering")


@pytest.mark.integration
def test_unknown_project_is_refused(lxd: Any) -> None:
    _one_error(run_cli("--project", "nonexistent" + secrets.token_hex(3), "list"), 2, "--project", "no LXD project")
    _one_error(run_cli("list", env={"LXCTOOL_PROJECT": "nope" + secrets.token_hex(3)}), 2, "--project")


@pytest.mark.integration
def test_image_delete_of_one_alias_says_so(lxd: Any, run_prefix: str) -> None:
    busybox = lxd.image_alias("busybox")
    assert busybox, "the busybox image is set up by scripts/setup-host.sh"
    a1, a2 = f"{run_prefix}-alias1", f"{run_prefix}-alias2"
    try:
        lxd.set_alias(a1, busybox["target"])
        lxd.set_alias(a2, busybox["target"])
        proc = run_cli("image", "delete", a1)
        assert proc.returncode == 0 and f"deleted alias {a1} only" in proc.stderr and "busybox" in proc.stderr
        assert lxd.image(busybox["target"]) is not None and lxd.image_alias(a1) is None
    finally:
        for alias in (a1, a2):
            if lxd.image_alias(alias) is not None:
                lxd.delete_alias(alias)


@pytest.mark.integration
def test_net_check_with_nothing_to_check(lxd: Any, run_prefix: str) -> None:
    name = f"{run_prefix[:8]}n"[:15]
    octet = int(run_prefix[1:3], 16) % 200 + 20
    proc = run_cli("network", "create", name, "--subnet", f"10.{octet}.251.1/24")
    assert proc.returncode == 0, proc.stderr
    try:
        check = run_cli("net", "check", name)
        _one_error(check, 2, "nothing to check")
        ss = os.popen("ss -ltnH 'sport = :8473'").read()
        assert f"10.{octet}.251.1" not in ss  # no listener left on the gateway
    finally:
        run_cli("network", "delete", name)
