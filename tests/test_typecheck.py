"""House style: the package type-checks with mypy and has no unused imports or undefined names."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_mypy_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "lxctool"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_pyflakes_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "pyflakes", "lxctool"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
