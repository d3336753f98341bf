"""`lxctool gc` removes exactly the debris whose owner process is gone, and says what it removed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from lxctool.core.names import MANAGED_KEY, TEMP_OWNER_KEY
from lxctool.host import owner


def dead_token() -> str:
    proc = subprocess.Popen(["true"])
    token = owner.token(proc.pid)
    proc.wait()
    assert not owner.alive(token)
    return token


def test_tokens_survive_pid_reuse() -> None:
    assert owner.alive(owner.token())
    pid, start = owner.token().split(":")
    assert not owner.alive(f"{pid}:{int(start) + 1}")  # same PID, another process
    assert not owner.alive("garbage") and not owner.alive("")


@pytest.mark.integration
def test_gc_removes_only_dead_owners_debris(lxd: Any, containers: Any, tmp_path: Path) -> None:
    dead = dead_token()
    made = {}
    for tag, mark in (("dead", dead), ("live", owner.token()), ("plain", None)):
        name = containers.name(f"gc{tag}")
        config = {MANAGED_KEY: "true", **({TEMP_OWNER_KEY: mark} if mark else {})}
        lxd.create_instance({"name": name, "source": {"type": "image", "alias": "busybox"},
                             "profiles": ["lxctool"], "config": config})
        made[tag] = name
    host, _ = containers.launch("--no-wait", tag="gchost")
    res = lxd.exec(host, ["sh", "-c", "setsid sh -c 'sleep 3600' </dev/null >/dev/null 2>&1 & echo $!"],
                   env={owner.ENV_KEY: dead})
    assert res.exit_code == 0
    cache = tmp_path / "cache"
    folder = cache / "work" / "busybox-x1"
    (folder / "rootfs" / "proc").mkdir(parents=True)
    (folder / ".lxctool-owner").write_text(dead)
    subprocess.run(["mount", "-t", "tmpfs", "lxctool-gc-test", str(folder / "rootfs" / "proc")], check=True)
    env = {"LXCTOOL_CACHE_DIR": str(cache)}
    try:
        dry = run_cli("gc", "--dry-run", "--format", "json", env=env)
        assert dry.returncode == 0, dry.stderr
        assert f"would remove container {made['dead']}" in dry.stderr
        assert "would remove process" in dry.stderr and "sleep 3600" in dry.stderr
        assert f"would remove build-folder {folder}" in dry.stderr
        assert lxd.instance(made["dead"]) is not None and folder.exists()

        proc = run_cli("gc", "--format", "json", env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert f"removed container {made['dead']}" in proc.stderr
        assert lxd.instance(made["dead"]) is None
        assert lxd.instance(made["live"]) is not None and lxd.instance(made["plain"]) is not None
        assert not folder.exists()
        ps = lxd.exec(host, ["ps"]).stdout
        assert "sleep 3600" not in ps, ps
        again = run_cli("gc", env=env)
        assert "nothing to remove" in again.stderr or made["dead"] not in again.stderr
    finally:
        subprocess.run(["umount", "-l", str(folder / "rootfs" / "proc")], capture_output=True)


def test_deferred_cleanup_finishes_before_the_signal() -> None:
    import signal as sig

    from lxctool.host.signals import deferred

    steps: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = sig.signal(sig.SIGINT, handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred():
                os.kill(os.getpid(), sig.SIGINT)
                steps.append("stop")      # a signal here used to leave a STOPPED, undeleted peer
                steps.append("delete")
        assert steps == ["stop", "delete"]
        assert sig.getsignal(sig.SIGINT) is handler
    finally:
        sig.signal(sig.SIGINT, old)
