"""Helpers for the dashboard tests: the real `lxctool dashboard` as a subprocess (stopped by PID)
and Debian's headless chromium driven by Selenium through /usr/bin/chromedriver."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE, lxctool_bin, terminate

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


class Dashboard:
    """`lxctool dashboard` started on a free port; url is what it printed on stderr."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, ignore_sigint: bool = False) -> None:
        def pre() -> None:  # like `cmd &` in a script: SIGINT ignored from the start
            if ignore_sigint:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

        self.proc = subprocess.Popen([lxctool_bin(), "dashboard", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **(env or {})}, preexec_fn=pre)
        self.stderr = ""
        self.url = self._wait_for_url()
        self.base = re.sub(r"\?.*$", "", self.url)

    def _wait_for_url(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([self.proc.stderr], [], [], 0.5)[0]:
                line = self.proc.stderr.readline()
                self.stderr += line
                found = re.search(r"dashboard on (http://\S+)", line)
                if found:
                    return found.group(1)
                if not line and self.proc.poll() is not None:
                    break
        self.stop()
        raise AssertionError(f"dashboard did not start: rc={self.proc.returncode}\n{self.stderr}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """(status, body) of a GET on the dashboard."""
        req = urllib.request.Request(self.base.rstrip("/") + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def samples(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """GET /api/samples as data."""
        status, body = self.get("/api/samples", headers)
        assert status == 200, body
        return json.loads(body)

    def wait_samples(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        """Poll /api/samples until predicate(snapshot) is true."""
        deadline = time.monotonic() + timeout
        snap = self.samples()
        while not predicate(snap):
            assert time.monotonic() < deadline, f"condition not met in {timeout}s: {json.dumps(snap)[-1500:]}"
            time.sleep(0.5)
            snap = self.samples()
        return snap

    def signal(self, sig: int, timeout: float = 20) -> int:
        """Send sig to the dashboard (by PID) and return its exit code."""
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stderr += err
        return self.proc.returncode

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL), by PID; safe to call twice."""
        terminate(self.proc)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def need(*paths: str) -> None:
    """Fail (in a run that requires every test) or skip when a tool scripts/test.sh installs is missing."""
    import shutil

    missing = [p for p in paths if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        message = f"missing {', '.join(missing)}: scripts/test.sh installs chromium, chromium-driver, prometheus"
        pytest.fail(message) if REQUIRE else pytest.skip(message)


def chromium(profile: Path) -> Any:
    """Headless Debian chromium through Debian's chromedriver (Selenium Manager never runs)."""
    need(CHROMIUM, CHROMEDRIVER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1800", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager would otherwise try to download a driver
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def wait_js(driver: Any, script: str, timeout: float = 30) -> Any:
    """Run script until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for: {script}"
        time.sleep(0.3)
