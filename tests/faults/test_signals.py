"""Signals at random moments: SIGINT (also with SIGINT inherited ignored, as after `&` in a
script), SIGTERM and SIGKILL, during launch, verify --only net, net check and image build.

Counted per trial: orphans (what the run created and left: a container, a peer, a process started
inside a container, a build folder or mount), tracebacks on stderr, exit codes. After a handled
signal nothing may remain; after SIGKILL `lxctool gc` must reclaim everything that was marked.

CI runs a short sample (1 trial per family and signal); `--run-slow` runs the full suite
(LXCTOOL_FAULT_TRIALS trials each, default 8) and writes its figures to results/faults.json,
from which RELIABILITY.md's table is taken.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import REPO, lxctool_bin, run_cli
from lxctool.images.debootstrap import OWNER_FILE
from lxctool.core.names import TEMP_OWNER_KEY

SIGNALS = {"SIGINT": signal.SIGINT, "SIGINT-ignored": signal.SIGINT, "SIGTERM": signal.SIGTERM,
           "SIGKILL": signal.SIGKILL}
EXPECTED_RC = {"SIGINT": 130, "SIGINT-ignored": 130, "SIGTERM": 143}
FIGURES: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))


def _trials(config: pytest.Config, slow: bool) -> int:
    return int(os.environ.get("LXCTOOL_FAULT_TRIALS", "8")) if slow else 1


def _start(args: list[str], ignore_int: bool, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    def pre() -> None:
        if ignore_int:  # what a shell does to a job started with & when job control is off
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([lxctool_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pre, env={**os.environ, **(env or {})})


def _owned_by(pid: int) -> Callable[[str], bool]:
    return lambda token: token.split(":", 1)[0] == str(pid)


def leftovers(lxd: Any, pid: int, names: list[str], cache: Path | None = None) -> list[str]:
    """What process PID created and left: named containers, marked containers, processes, build folders."""
    mine = _owned_by(pid)
    left = [f"container {n}" for n in names if lxd.instance(n) is not None]
    for inst in lxd.instances_full():
        token = (inst.get("config") or {}).get(TEMP_OWNER_KEY, "")
        if token and mine(token) and inst["name"] not in names:
            left.append(f"container {inst['name']}")
    from lxctool.host import owner

    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            token = owner.environ_owner(int(entry.name))
            if token and mine(token):
                left.append(f"process {entry.name}")
    if cache is not None and (cache / "work").is_dir():
        for folder in (cache / "work").iterdir():
            marker = folder / OWNER_FILE
            if marker.exists() and mine(marker.read_text()):
                left.append(f"build-folder {folder}")
    return left


def run_trials(family: str, lxd: Any, n: int, make: Callable[[int], tuple[list[str], list[str]]],
               delay: tuple[float, float], cache: Path | None = None, env: dict[str, str] | None = None) -> None:
    """n trials per signal; make(i) -> (argv, names this run may create). Asserts and records figures."""
    rng = random.Random(int(os.environ.get("LXCTOOL_FAULT_SEED", secrets.randbits(32))))
    fig = FIGURES[family]
    failures = []
    for label, sig in SIGNALS.items():
        for i in range(n):
            args, names = make(fig["trials"])
            proc = _start(args, ignore_int=label == "SIGINT-ignored", env=env)
            wait = rng.uniform(*delay)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
            out, err = proc.communicate(timeout=180)
            fig["trials"] += 1
            fig[f"trials {label}"] += 1
            finished = proc.returncode in (0, 3)
            if "Traceback" in err:
                fig["tracebacks"] += 1
                failures.append(f"{family} {label} after {wait:.2f}s: traceback\n{err[-2000:]}")
            if label != "SIGKILL" and not finished and proc.returncode != EXPECTED_RC[label]:
                fig["wrong exit codes"] += 1
                failures.append(f"{family} {label} after {wait:.2f}s: exit {proc.returncode}\n{err[-500:]}")
            if finished:
                fig["finished before the signal"] += 1
            if label == "SIGKILL" and not finished:
                left = leftovers(lxd, proc.pid, [] if family == "launch" else names, cache)
                fig["left by kill -9 (marked, before gc)"] += len(left)
                gcp = run_cli("gc", env=env)
                if "Traceback" in gcp.stderr:
                    fig["tracebacks"] += 1
                left = leftovers(lxd, proc.pid, names if not finished else [], cache)
                settled = [x for x in left if x.startswith("container ") and not
                           ((lxd.instance(x.split()[1]) or {}).get("config") or {}).get(TEMP_OWNER_KEY)]
                if family == "launch" and settled:  # killed after it settled, before the print: kept
                    fig["kill -9 after the launch completed (kept)"] += len(settled)
                    left = [x for x in left if x not in settled]
                    for x in settled:
                        lxd.remove_instance(x.split()[1])
                fig["orphans after kill -9 + gc"] += len(left)
                if left:
                    failures.append(f"{family} SIGKILL after {wait:.2f}s: gc left {left}")
            elif not finished:
                left = leftovers(lxd, proc.pid, names, cache)
                fig["orphans after handled signals"] += len(left)
                if left:
                    failures.append(f"{family} {label} after {wait:.2f}s: left {left}\n{err[-800:]}")
            for name in names:  # a run that finished keeps what it made: the test removes it
                if lxd.instance(name) is not None and finished:
                    lxd.remove_instance(name)
    _write_figures()
    assert not failures, "\n\n".join(failures)


def _quietly(step: Callable[[], Any]) -> None:
    """A teardown step that must not hide the test's own result (the shared daemon may be restarting)."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - reported, the next steps still run
        print(f"teardown: {exc}")


def _write_figures() -> None:
    out = REPO / "results" / "faults.json"
    out.parent.mkdir(exist_ok=True)
    try:  # families may run in separate sessions: this one replaces only its own families
        figures = json.loads(out.read_text())
    except (OSError, ValueError):
        figures = {}
    figures.update({k: dict(v) for k, v in FIGURES.items()})
    out.write_text(json.dumps(figures, indent=2, sort_keys=True))


@pytest.fixture(params=[False, pytest.param(True, marks=pytest.mark.slow)], ids=["sample", "full"])
def trials(request: pytest.FixtureRequest) -> int:
    return _trials(request.config, request.param)


@pytest.mark.integration
def test_launch_under_signals(lxd: Any, run_prefix: str, trials: int) -> None:
    run_trials("launch", lxd, trials,
               lambda i: (["launch", f"{run_prefix}-sg{i}", "--mem", "64MB"], [f"{run_prefix}-sg{i}"]),
               delay=(0.05, 1.0))


@pytest.fixture(scope="module")
def shaped(lxd: Any, run_prefix: str) -> Iterator[str]:
    name = f"{run_prefix}-sgnet"
    run_cli("launch", name, "--net-in", "20Mbit", check=True)
    try:
        yield name
    finally:
        _quietly(lambda: lxd.remove_instance(name))


@pytest.mark.integration
def test_verify_net_under_signals(lxd: Any, shaped: str, trials: int) -> None:
    run_trials("verify --only net", lxd, trials,
               lambda i: (["verify", shaped, "--only", "net", "--duration", "2"], []), delay=(0.2, 6.0))


@pytest.fixture(scope="module")
def lab(lxd: Any, run_prefix: str) -> Iterator[str]:
    net = f"{run_prefix[:9]}sg"
    octet = int(run_prefix[1:3], 16) % 200 + 20
    run_cli("network", "create", net, "--subnet", f"10.{octet}.252.1/24", check=True)
    members = [f"{run_prefix}-sgl{i}" for i in (1, 2)]
    try:
        for m in members:
            run_cli("launch", m, "--network", net, check=True)
        yield net
    finally:
        for m in members:
            _quietly(lambda: lxd.remove_instance(m))
        run_cli("network", "delete", net)


@pytest.mark.integration
def test_net_check_under_signals(lxd: Any, lab: str, trials: int) -> None:
    run_trials("net check", lxd, trials, lambda i: (["net", "check", lab, "--timeout", "1"], []), delay=(0.1, 3.0))


@pytest.mark.integration
def test_image_build_under_signals(lxd: Any, run_prefix: str, trials: int, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    alias = f"{run_prefix}-sgimg"
    # derived from debian so that the build chroots (mounts /proc, /sys, /dev, /dev/pts) for a while
    (images / f"{alias}.yaml").write_text("base: debian\nreadiness: 'true'\ncommands: ['sleep 3']\n")
    for base in ("debian.yaml",):
        (images / base).write_text((REPO / "images" / base).read_text())
    cache = Path(os.environ.get("LXCTOOL_CACHE_DIR", "/var/cache/lxctool"))
    env = {"LXCTOOL_IMAGES_DIR": str(images)}
    try:
        run_trials("image build", lxd, trials, lambda i: (["image", "build", alias, "--force"], []),
                   delay=(0.5, 8.0), cache=cache, env=env)
    finally:
        if lxd.image_alias(alias) is not None:
            run_cli("image", "delete", alias)


@pytest.mark.integration
def test_experiment_under_signals(lxd: Any, trials: int, tmp_path: Path) -> None:
    exp = tmp_path / "sweep.yaml"
    exp.write_text("limit: cpu\nvalues: [0.5]\nrepeats: 1\nduration: 1\n")
    run_trials("experiment run", lxd, trials,
               lambda i: (["experiment", "run", str(exp), "--out", str(tmp_path / f"out{i}")], []),
               delay=(0.2, 5.0))
