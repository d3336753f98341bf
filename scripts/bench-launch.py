#!/usr/bin/env python3
"""Benchmark: lxctool launch vs `lxc launch` + wait for IPv4, vs lxd-benchmark, in one run.

Runs in a throw-away LXD project (its own profiles, the host's images, pool and lxctool0
bridge) and removes it afterwards. Alternates the tools so that drift hits both alike, and
prints medians and ratios. Targets on these machines: launch ratio <= 1.25,
`lxctool --help` <= 0.2 s. Not a test: timing depends on the machine.

Usage: .venv/bin/python scripts/bench-launch.py [--runs N] [--image busybox]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lxctool.lxd.client import Lxd, ipv4_addresses, wait_until  # noqa: E402

LXCTOOL = str(REPO / ".venv/bin/lxctool") if (REPO / ".venv/bin/lxctool").exists() else "lxctool"
LIMITS = {"limits.cpu": "1", "limits.memory": "256MB"}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Run cmd, fail loudly if it fails; return wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def setup_project(root: Lxd, project: str) -> Lxd:
    """A project that sees the host's images and networks but has its own profiles."""
    base = root.profile("lxctool")
    if base is None:
        raise SystemExit("bench: no lxctool profile; run scripts/setup-host.sh first")
    root.call("POST", "/1.0/projects", body={"name": project, "config": {
        "features.images": "false", "features.profiles": "true", "features.storage.volumes": "true"}})
    lxd = Lxd(project=project)
    lxd.call("PUT", "/1.0/profiles/default", body={"config": {}, "devices": base["devices"],
                                                    "description": "bench"})
    lxd.put_profile("lxctool", base["config"], base["devices"], "bench copy of lxctool")
    return lxd


def teardown_project(root: Lxd, lxd: Lxd, project: str) -> None:
    """Delete everything the benchmark made, then the project."""
    for inst in lxd.instances_full():
        if inst["status"] != "Stopped":
            lxd.set_state(inst["name"], "stop", force=True)
        lxd.delete_instance(inst["name"])
    lxd.call("PUT", "/1.0/profiles/default", body={"config": {}, "devices": {}, "description": ""})
    lxd.delete_profile("lxctool")
    root.call("DELETE", f"/1.0/projects/{project}")


def lxc_launch_and_wait(lxd: Lxd, project: str, image: str, name: str) -> float:
    """`lxc launch` with the same limits, then poll the API until the container has an IPv4."""
    t0 = time.perf_counter()
    cmd = ["lxc", "launch", image, name, "--project", project, "-p", "lxctool"]
    for k, v in LIMITS.items():
        cmd += ["-c", f"{k}={v}"]
    subprocess.run(cmd, check=True, capture_output=True)
    if not wait_until(lambda: ipv4_addresses(lxd.instance_state(name)), 60):
        raise SystemExit(f"bench: {name} got no IPv4")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", default="busybox")
    args = ap.parse_args()
    project = f"lxctool-bench-{os.getpid()}"
    root = Lxd()
    lxd = setup_project(root, project)
    env = {**os.environ, "LXCTOOL_PROJECT": project}
    times: dict[str, list[float]] = {"lxctool launch": [], "lxc launch + wait IPv4": [],
                                     "lxctool delete": [], "lxc delete -f": []}
    try:
        print(f"bench: warming up (image {args.image} unpacked once into the pool)", file=sys.stderr)
        lxc_launch_and_wait(lxd, project, args.image, "warm")
        subprocess.run(["lxc", "delete", "-f", "warm", "--project", project], check=True)
        for i in range(args.runs):
            pair = [("lxctool", f"lt{i}"), ("lxc", f"lc{i}")]
            for tool, name in (pair if i % 2 == 0 else pair[::-1]):
                if tool == "lxctool":
                    times["lxctool launch"].append(timed([LXCTOOL, "launch", name, "--image", args.image,
                                                          "--cpu", "1", "--mem", "256MB"], env))
                else:
                    times["lxc launch + wait IPv4"].append(lxc_launch_and_wait(lxd, project, args.image, name))
            print(f"bench: launch round {i + 1}/{args.runs} done", file=sys.stderr)
        for i in range(args.runs):
            times["lxctool delete"].append(timed([LXCTOOL, "delete", f"lt{i}"], env))
            times["lxc delete -f"].append(timed(["lxc", "delete", "-f", f"lc{i}", "--project", project]))
        bench_per = None
        if shutil.which("lxd-benchmark"):
            report = Path(f"/tmp/{project}.csv")
            t0 = time.perf_counter()
            subprocess.run(["lxd-benchmark", "launch", "--count", str(args.runs), "--parallel", "1",
                            "--project", project, args.image], check=True, capture_output=True)
            bench_per = (time.perf_counter() - t0) / args.runs
            subprocess.run(["lxd-benchmark", "delete", "--project", project], check=True, capture_output=True)
            report.unlink(missing_ok=True)
        helps = [timed([LXCTOOL, "--help"]) for _ in range(7)]
    finally:
        teardown_project(root, lxd, project)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'what':34} {'median s':>9}  runs")
    for k, v in times.items():
        print(f"{k:34} {med[k]:9.3f}  {len(v)}")
    if bench_per is not None:
        print(f"{'lxd-benchmark launch (per ct)':34} {bench_per:9.3f}  {args.runs}  (no IPv4 wait)")
    print(f"{'lxctool --help':34} {statistics.median(helps):9.3f}  {len(helps)}")
    ratio = med["lxctool launch"] / med["lxc launch + wait IPv4"]
    print(f"\nlaunch ratio lxctool / (lxc + wait IPv4): {ratio:.2f}  (target <= 1.25)")
    print(f"delete ratio lxctool / lxc delete -f:      {med['lxctool delete'] / med['lxc delete -f']:.2f}")
    if bench_per is not None:
        print(f"launch ratio lxctool / lxd-benchmark:      {med['lxctool launch'] / bench_per:.2f}"
              "  (lxd-benchmark does not wait for an address)")
    print(f"lxctool --help: {statistics.median(helps):.3f} s  (target <= 0.2 s)")


if __name__ == "__main__":
    main()
