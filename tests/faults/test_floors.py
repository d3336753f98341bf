"""Floors and current use: limits a container cannot start or live with are refused before any change.

The floors are measured (scripts/measure-floors.sh) and quoted in the message; a live change below
what the container uses now is refused with the current figure; and a container whose start LXD
failed is removed even while LXD's own stop of it is still running (no STOPPED orphan).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conftest import run_cli
from lxctool.core.spec import FLOORS, Limits, check_floors, option_label


def _refused(proc: Any, *needles: str) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    return proc.stderr


def test_floors_quote_the_measurement() -> None:
    errs = check_floors(Limits(memory=1, processes=1), "debian", option_label)
    assert len(errs) == 2 and "not with 20MB" in errs[0] and "use at least 22MB" in errs[0]
    assert "not with 12" in errs[1]
    assert check_floors(Limits(memory=FLOORS["busybox"].memory, processes=4), "busybox", option_label) == []


@pytest.mark.integration
@pytest.mark.parametrize("args,needle", [(["--mem", "1B"], "--mem: 1B is below what a busybox"),
                                         (["--processes", "1"], "--processes: 1 is below"),
                                         (["--image", "debian", "--mem", "16MB"], "debian (systemd)")])
def test_launch_below_the_floor_creates_nothing(lxd: Any, containers: Any, args: list[str], needle: str) -> None:
    name = containers.name("floor")
    _refused(run_cli("launch", name, *args), needle)
    assert lxd.instance(name) is None


@pytest.mark.integration
def test_live_limits_below_current_use(lxd: Any, containers: Any) -> None:
    name, _ = containers.launch("--mem", "128MB", "--processes", "50", "--disk", "200MB")
    lxd.exec(name, ["sh", "-c", "dd if=/dev/zero of=/root/fill bs=1M count=24 2>/dev/null; sync"])
    state = lxd.instance_state(name)
    tasks = state["processes"]
    before = lxd.instance(name)["config"]
    _refused(run_cli("limits", name, "--processes", str(tasks)), f"counts {tasks} tasks now", "use at least")
    _refused(run_cli("limits", name, "--processes", "2"), "below what a busybox")
    _refused(run_cli("limits", name, "--mem", "10MB"), f"{name} uses ", "page cache included")
    _refused(run_cli("limits", name, "--disk", "1MB"), "root disk holds", "unwritable")
    _refused(run_cli("limits", name, "--disk", "1B"), "root disk holds")
    assert lxd.instance(name)["config"] == before  # nothing reached LXD
    assert run_cli("limits", name, "--processes", str(tasks + 20)).returncode == 0


@pytest.mark.integration
def test_failed_start_is_removed_while_lxd_still_stops_it(lxd: Any, run_prefix: str) -> None:
    """The race behind `launch x --mem 1B` leaving a STOPPED container: delete while LXD stops it."""
    from lxctool.core.errors import LxctoolError
    from lxctool.lxd.client import Lxd

    for i in range(3):
        name = f"{run_prefix}-race{i}"
        lxd.create_instance({"name": name, "source": {"type": "image", "alias": "busybox"},
                             "profiles": ["lxctool"], "config": {"limits.memory": "1MB"}})
        busy = Lxd(lxd.socket_path, lxd.project)
        outcome: list[str] = []

        def start() -> None:
            try:
                busy.set_state(name, "start")
                outcome.append("started")
            except LxctoolError as exc:
                outcome.append(str(exc))

        worker = threading.Thread(target=start)
        worker.start()  # the start is in flight on its own connection, as under Ctrl-C
        try:
            assert lxd.remove_instance(name, timeout=60)
        finally:
            worker.join(60)
            if lxd.instance(name) is not None:
                lxd.remove_instance(name)
        assert lxd.instance(name) is None, f"orphan left: {name} ({outcome})"
