"""experiment run: file validation (pure), bad files (CLI, exit 2, nothing changed), a real sweep."""

from __future__ import annotations

import csv
import re
import json
from pathlib import Path

import pytest

from lxctool.core.errors import SpecError
from lxctool.verify.experiment import load, point_summary, rises_with_configured
from conftest import REPO, run_cli


def _file(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("shipped", ["cpu-quota", "memory-oom", "processes"])
def test_shipped_experiments_are_valid(shipped: str) -> None:
    exp = load(REPO / "experiments" / f"{shipped}.yaml", host_cpus=2)
    assert len(exp.values) >= 3 and exp.repeats >= 1


def test_unknown_keys_empty_sweep_and_bad_values_are_all_reported(tmp_path: Path) -> None:
    path = _file(tmp_path, "limit: cpu\nvalues: []\nrepeat: 3\ncolour: red\n")
    with pytest.raises(SpecError) as exc:
        load(path, host_cpus=2)
    errs = exc.value.errors
    assert "sweep.yaml: repeat: unknown key; use description, limit, values, repeats, duration, image, fixed" in errs
    assert any(e.startswith("sweep.yaml: colour: unknown key") for e in errs)
    assert "sweep.yaml: values: the sweep is empty; give a list of at least one value" in errs


def test_values_are_checked_against_the_limit_and_the_host(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        load(_file(tmp_path, "limit: cpu\nvalues: [0.5, 1.5x, 3.5, 2]\n"), host_cpus=2)
    text = "\n".join(exc.value.errors)
    assert "values[1]: '1.5x' is not a CPU value" in text
    assert "values[2]: a quota of 3.5 CPUs exceeds this host's 2" in text
    assert "values[3]: 2 is a CPU count" in text
    with pytest.raises(SpecError, match="limit: 'gpu' cannot be swept; use one of cpu, mem, processes"):
        load(_file(tmp_path, "limit: gpu\nvalues: [1]\n"), host_cpus=2)


def test_summary_means_and_monotonic_check() -> None:
    rows = [{"configured": c, "measured": m, "unit": "CPU", "repeat": 1, "verdict": "ENFORCED"}
            for c, m in ((0.2, 0.19), (0.2, 0.21), (0.5, 0.49), (0.8, 0.7))]
    summary = point_summary(rows)
    assert [p["measured_mean"] for p in summary] == [0.2, 0.49, 0.7]
    assert rises_with_configured(summary)
    assert not rises_with_configured([{"measured_mean": 0.5}, {"measured_mean": 0.5}])


@pytest.mark.integration
def test_bad_experiment_file_exits_2_and_changes_nothing(lxd, tmp_path: Path, snapshot) -> None:
    before = snapshot()
    proc = run_cli("experiment", "run", str(_file(tmp_path, "limit: mem\nvalues: []\nwhat: 1\n")),
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert "values: the sweep is empty" in proc.stderr and "what: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    assert snapshot() == before


@pytest.mark.integration
def test_three_point_cpu_sweep_writes_rising_csv_and_a_png(lxd, tmp_path: Path) -> None:
    path = _file(tmp_path, "description: test sweep\nlimit: cpu\nvalues: [0.1, 0.3, 0.6]\n"
                           "repeats: 2\nduration: 2\n", name="cpu-test.yaml")
    out = tmp_path / "out"
    proc = run_cli("experiment", "run", str(path), "--out", str(out), "--format", "json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["limit", "unit", "configured", "measured", "repeat", "verdict"]
    assert len(rows) == 3 * 2
    assert sorted({r["repeat"] for r in rows}) == ["1", "2"]
    means = {}
    for r in rows:
        means.setdefault(float(r["configured"]), []).append(float(r["measured"]))
        assert float(r["measured"]) <= float(r["configured"]) * 1.05
    avg = [sum(v) / len(v) for _, v in sorted(means.items())]
    assert avg[0] < avg[1] < avg[2], avg
    assert avg[0] > 0.08
    png = (out / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "measured rises with configured: yes" in (out / "summary.txt").read_text()
    summary = json.loads(proc.stdout)
    assert [p["configured"] for p in summary] == [0.1, 0.3, 0.6]
    assert "creating ex-cpu-test-" in proc.stderr
    assert not [i["name"] for i in lxd.instances_full() if i["name"].startswith("ex-cpu-test-")]


@pytest.mark.integration
def test_ctrl_c_stops_the_sweep_and_removes_its_container(lxd, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from conftest import lxctool_bin

    path = _file(tmp_path, "limit: cpu\nvalues: [0.2, 0.4]\nrepeats: 3\nduration: 20\n", name="ctrlc.yaml")
    proc = subprocess.Popen([lxctool_bin(), "experiment", "run", str(path), "--out", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = ""
    deadline = time.monotonic() + 60
    while "point 1/2" not in err and time.monotonic() < deadline:
        err += proc.stderr.readline()
    name = re.search(r"creating (ex-ctrlc-\w+)", err).group(1)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in rest and "Traceback" not in rest
    assert lxd.instance(name) is None
