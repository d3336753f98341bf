"""scripts/setup-host.sh is idempotent: a re-run succeeds quickly and changes nothing."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import REPO

pytestmark = pytest.mark.integration


HOST_KEYS = ("profiles", "networks", "images", "iptables", "nft")  # what set-up manages


def test_setup_rerun_changes_nothing(lxd, snapshot) -> None:
    before = {k: v for k, v in snapshot().items() if k in HOST_KEYS}
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "scripts/setup-host.sh")], capture_output=True, text=True,
                          timeout=600)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pool lxctool exists" in proc.stderr and "bridge lxctool0 exists" in proc.stderr
    assert "up to date" in proc.stderr  # the busybox image was not rebuilt
    assert {k: v for k, v in snapshot().items() if k in HOST_KEYS} == before
    assert elapsed < 60, f"a re-run took {elapsed:.1f}s"
