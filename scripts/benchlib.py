"""The machinery of scripts/bench.py: a throw-away LXD project, timed commands with their CPU
time and LXD request counts, alternation, fleets of busybox containers, cleanup and output."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lxctool.lxd.client import ApiError, Lxd, ipv4_addresses, wait_until  # noqa: E402
from lxctool.apply.handlers import stop_and_delete  # noqa: E402

REQUESTS_RE = re.compile(r"^lxctool: lxd requests: (\d+)$", re.M)
BENCHMARK_KEY = "user.lxd-benchmark"  # lxd-benchmark marks what it creates (and deletes only that)


@dataclass
class Run:
    """One timed command."""

    wall: float
    cpu: float | None = None        # user + system seconds of the child (None: not measured)
    daemon_cpu: float | None = None  # user + system seconds the LXD daemon spent meanwhile
    requests: int | None = None     # LXD requests lxctool made (LXCTOOL_COUNT_REQUESTS=1)
    stdout: str = ""


def lxd_daemon_pid() -> int | None:
    """The LXD daemon's PID (not its fork* helpers, which share its command name)."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or (proc / "comm").read_text().strip() != "lxd":
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) < 2 or not argv[1] or argv[1].startswith(b"-"):
            return int(proc.name)
    return None


def process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far, with its reaped children's (LXD forks a
    helper into each container's namespaces to read its network state)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def median(values: list[float]) -> float:
    """The median (at least one value)."""
    return float(statistics.median(values))


def ratio_row(figure: str, what: str, ours: list[Run], anchor: str, theirs: list[Run]) -> dict[str, Any]:
    """A table row: medians of both sides, their ratio, CPU time and requests of lxctool's side."""
    mine, other = median([r.wall for r in ours]), median([r.wall for r in theirs])
    cpus = [r.cpu for r in ours if r.cpu is not None]
    reqs = [r.requests for r in ours if r.requests is not None]

    def total(runs: list[Run]) -> float | None:
        # client + daemon CPU: what the call costs the machine, much less sensitive to load than wall time
        both = [r.cpu + r.daemon_cpu for r in runs if r.cpu is not None and r.daemon_cpu is not None]
        return round(median(both), 4) if both else None

    return {"figure": figure, "what": what, "lxctool_s": round(mine, 4), "anchor": anchor,
            "anchor_s": round(other, 4), "ratio": round(mine / other, 3) if other else None,
            "lxctool_cpu_s": round(median(cpus), 4) if cpus else None,
            "lxctool_total_cpu_s": total(ours), "anchor_total_cpu_s": total(theirs),
            "requests": max(reqs) if reqs else None, "runs": len(ours)}


class Bench:
    """One benchmark run: its project, its names, what it made, and its results."""

    def __init__(self, runs: int, hex_id: str) -> None:
        self.runs = runs
        self.hex = hex_id
        self.project = f"bench-{hex_id}"
        self.prefix = f"bench-{hex_id}-"
        venv = REPO / ".venv" / "bin" / "lxctool"
        self.lxctool = str(venv) if venv.exists() else "lxctool"
        self.env = {**os.environ, "LXCTOOL_PROJECT": self.project, "LXCTOOL_COUNT_REQUESTS": "1"}
        for var in ("LXCTOOL_FORMAT", "LXCTOOL_IMAGE", "LXCTOOL_NETWORK", "LXCTOOL_SOCKET"):
            self.env.pop(var, None)
        self.root = Lxd()
        self.lxd: Lxd | None = None
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.results: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self.fleet: list[str] = []
        self.cleanup_aliases: list[str] = []
        self.cleanup_paths: list[Path] = []
        self._pool: str | None = None
        self._n = 0
        self._torn_down = False
        self.daemon_pid = lxd_daemon_pid()

    # -- talk and results ---------------------------------------------------
    def progress(self, message: str) -> None:
        """Progress on stderr."""
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A note printed under the table (a skipped figure, a reason)."""
        self.notes.append(message)
        self.progress(message)

    def add(self, row: dict[str, Any]) -> None:
        """One result row."""
        self.rows.append(row)

    def have(self, tool: str) -> bool:
        """Whether a command is installed."""
        return shutil.which(tool) is not None

    # -- set-up and tear-down -------------------------------------------------
    def setup(self) -> None:
        """The project (host images, own profiles: default and lxctool copied from the host's)."""
        base = self.root.profile("lxctool")
        if base is None:
            raise SystemExit("bench: no lxctool profile; run scripts/setup-host.sh first")
        server = self.root.server()
        pool = (base["devices"].get("root") or {}).get("pool", "")
        self.header = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "kernel": platform.release(), "lxd": server.get("environment", {}).get("server_version"),
            "storage": f"{pool} ({(self.root.storage_pool(pool) or {}).get('driver', '?')})",
            "load_at_start": os.getloadavg()[0], "python": platform.python_version(), "runs": self.runs,
            "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip(),
        }
        self.root.call("POST", "/1.0/projects", body={"name": self.project, "config": {
            "features.images": "false", "features.profiles": "true", "features.storage.volumes": "true"}})
        self.lxd = Lxd(project=self.project)
        self.lxd.call("PUT", "/1.0/profiles/default", body={"config": {}, "devices": base["devices"],
                                                            "description": "bench"})
        self.lxd.put_profile("lxctool", base["config"], base["devices"], "bench copy of lxctool")
        self.progress(f"project {self.project}; {self.header}")

    def wait_for_daemon(self, timeout: float = 120) -> None:
        """Wait until the daemon answers (it may be restarting under us)."""
        def answers() -> bool:
            try:
                self.root.ping()
                return True
            except Exception:  # noqa: BLE001 - not up yet
                self.root.close()
                return False

        wait_until(answers, timeout, interval=1)

    def teardown(self) -> None:
        """Delete exactly what this run made: its containers, profiles, project, pool, images."""
        if self._torn_down:
            return
        self._torn_down = True
        self.wait_for_daemon()
        if self.lxd is None and self.project in self.root.projects():
            self.lxd = Lxd(project=self.project)  # --cleanup of an earlier, interrupted run
        if self.lxd is not None:
            try:
                mine = [i["name"] for i in self.lxd.get("/1.0/instances", recursion=1) or []
                        if i["name"].startswith(self.prefix) or (i.get("config") or {}).get(BENCHMARK_KEY)]
                self.delete_instances(mine)
                for profile in ("lxctool", "bench-dir"):
                    if self.lxd.profile(profile) is not None:
                        self.lxd.delete_profile(profile)
                self.lxd.call("PUT", "/1.0/profiles/default", body={"config": {}, "devices": {}, "description": ""})
                self.root.call("DELETE", f"/1.0/projects/{self.project}")
            except Exception as exc:  # noqa: BLE001 - go on removing the rest, and say what is left
                self.progress(f"cleanup of project {self.project} incomplete: {exc}; "
                              f"finish it with: scripts/bench.py --cleanup {self.hex}")
        if self._pool:
            try:
                self.root.call("DELETE", f"/1.0/storage-pools/{self._pool}")
            except Exception as exc:  # noqa: BLE001
                self.progress(f"cleanup of pool {self._pool} failed: {exc}")
        for alias in self.cleanup_aliases:
            self.drop_alias(alias)
        for path in self.cleanup_paths:
            shutil.rmtree(path, ignore_errors=True)

    def name(self, tag: str) -> str:
        """A fresh container name of this run."""
        self._n += 1
        return f"{self.prefix}{tag}{self._n}"

    def delete_instances(self, names: list[str]) -> None:
        """Stop and delete these containers (two at a time); missing ones are fine."""
        def one(name: str) -> None:
            lxd = Lxd(project=self.project)
            try:
                stop_and_delete(lxd, name)
            finally:
                lxd.close()

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one, names))
        self.fleet = [n for n in self.fleet if n not in names]

    def drop_alias(self, alias: str) -> None:
        """Delete an image alias of this run and its image."""
        found = self.root.image_alias(alias)
        if found is not None:
            try:
                self.root.delete_image(found["target"])
            except ApiError:
                self.root.delete_alias(alias)

    def dir_pool_profile(self) -> str:
        """A `dir` pool of this run and a project profile putting the root disk on it."""
        assert self.lxd is not None
        self._pool = f"{self.prefix}dir"
        self.root.call("POST", "/1.0/storage-pools", body={"name": self._pool, "driver": "dir", "config": {}})
        base = self.lxd.profile("lxctool") or {}
        root = {**base["devices"]["root"], "pool": self._pool}
        self.lxd.put_profile("bench-dir", {}, {"root": root}, "bench: root disk on a dir pool")
        return "bench-dir"

    # -- timing ---------------------------------------------------------------
    def timed(self, cmd: list[str], env: dict[str, str] | None = None) -> Run:
        """Run cmd; fail loudly if it fails; wall and CPU seconds, and lxctool's LXD request count."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemon_before = process_cpu(self.daemon_pid)
        if daemon_before is None:  # the daemon was restarted under us: follow the new one
            self.daemon_pid = lxd_daemon_pid()
            daemon_before = process_cpu(self.daemon_pid)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemon_after = process_cpu(self.daemon_pid)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        counts = REQUESTS_RE.findall(proc.stderr)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        daemon = daemon_after - daemon_before if daemon_before is not None and daemon_after is not None else None
        return Run(wall, cpu, daemon, int(counts[-1]) if counts else None, proc.stdout)

    def alternate(self, ours: Callable[[], Run], theirs: Callable[[], Run],
                  warm_up: bool = True) -> tuple[list[Run], list[Run]]:
        """One warm-up each (page cache, LXD's caches), then runs of both, alternating which goes first."""
        if warm_up:
            ours()
            theirs()
        mine: list[Run] = []
        other: list[Run] = []
        for i in range(self.runs):
            if i % 2 == 0:
                mine.append(ours())
                other.append(theirs())
            else:
                other.append(theirs())
                mine.append(ours())
        return mine, other

    def lxc_launch_wait(self, name: str, image: str = "busybox") -> Run:
        """`lxc launch` with the same profile, then poll the API until the container has an IPv4."""
        assert self.lxd is not None
        t0 = time.perf_counter()
        subprocess.run(["lxc", "launch", image, name, "--project", self.project, "-p", "lxctool"],
                       check=True, capture_output=True)
        if not wait_until(lambda: ipv4_addresses(self.lxd.instance_state(name)), 60):  # type: ignore[union-attr]
            raise SystemExit(f"bench: {name} got no IPv4")
        return Run(time.perf_counter() - t0)

    # -- fleets ---------------------------------------------------------------
    def benchmark_launch(self, count: int) -> list[str]:
        """lxd-benchmark launch of COUNT busybox containers (the local alias); their names."""
        proc = subprocess.run(["lxd-benchmark", "launch", "--count", str(count), "--parallel", "2",
                               "--project", self.project, "busybox"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"lxd-benchmark launch failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-600:]}")
        assert self.lxd is not None
        return sorted(i["name"] for i in self.lxd.get("/1.0/instances", recursion=1)
                      if (i.get("config") or {}).get(BENCHMARK_KEY))

    def grow_fleet(self, size: int) -> None:
        """Running busybox containers (64MB, 1 CPU) until the fleet has SIZE; wait for every IPv4."""
        def one(name: str) -> None:
            lxd = Lxd(project=self.project)
            try:
                lxd.create_instance({"name": name, "source": {"type": "image", "alias": "busybox"},
                                     "profiles": ["lxctool"],
                                     "config": {"limits.memory": "64MB", "limits.cpu": "1"}})
                lxd.set_state(name, "start")
            finally:
                lxd.close()

        new = [self.name("f") for _ in range(size - len(self.fleet))]
        self.fleet += new
        self.progress(f"fleet: starting {len(new)} more (to {size})")
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one, new))
        assert self.lxd is not None
        lxd = self.lxd

        def all_addressed() -> bool:
            insts = [i for i in lxd.instances_full() if i["name"] in self.fleet]
            return len(insts) == len(self.fleet) and all(ipv4_addresses(i.get("state")) for i in insts)

        if not wait_until(all_addressed, 120, interval=0.5):
            self.note(f"fleet of {size}: not every container had an IPv4 after 120 s")

    def delete_fleet(self) -> None:
        """Delete the fleet."""
        self.delete_instances(list(self.fleet))

    # -- output ---------------------------------------------------------------
    def write(self, out: Path, stamp: str, failures: list[str]) -> tuple[Path, Path]:
        """bench-STAMP.md (header, table, notes) and bench-STAMP.json under out."""
        out.mkdir(parents=True, exist_ok=True)
        h = self.header
        lines = [f"# lxctool benchmark {h.get('date', '')}", "",
                 f"Machine: {h.get('cpus')} CPUs, kernel {h.get('kernel')}, LXD {h.get('lxd')}, "
                 f"storage pool {h.get('storage')}, load {h.get('load_at_start', 0):.2f} at start; "
                 f"Python {h.get('python')}; commit {h.get('commit')}; medians of {self.runs} runs, "
                 "lxctool and anchor alternating. \"CPU s with LXD's\" adds the LXD daemon's CPU time "
                 "during the call to the command's own (other work on the machine adds to it too).", "",
                 "| figure | lxctool | s | anchor | s | ratio | target | lxctool CPU s | CPU s with LXD's: lxctool / anchor | LXD requests |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            value = r.get("ratio") if "ratio" in r else r.get("value")
            target = r.get("target")
            mark = "" if target is None else (" ok" if r.get("meets_target") else " MISSED")
            lines.append(f"| {r['figure']} | {r['what']} | {_num(r.get('lxctool_s', r.get('value')))} | "
                         f"{r.get('anchor', '')} | {_num(r.get('anchor_s'))} | {_num(value) if 'ratio' in r else ''} | "
                         f"{'' if target is None else target}{mark} | {_num(r.get('lxctool_cpu_s'))} | "
                         f"{_pair(r.get('lxctool_total_cpu_s'), r.get('anchor_total_cpu_s'))} | "
                         f"{'' if r.get('requests') is None else r['requests']} |")
        if self.notes or failures:
            lines += ["", *[f"- {n}" for n in self.notes], *[f"- past target: {f}" for f in failures]]
        md = out / f"bench-{stamp}.md"
        md.write_text("\n".join(lines) + "\n")
        js = out / f"bench-{stamp}.json"
        js.write_text(json.dumps({"machine": h, "rows": self.rows, "notes": self.notes, "failures": failures,
                                  **self.results}, indent=2) + "\n")
        return md, js

    def plot(self, png: Path) -> None:
        """Wall time and LXD requests against the number of running containers."""
        plot_scale(self.results["scale"], self.header, png)


def plot_scale(pts: list[dict[str, Any]], header: dict[str, Any], png: Path) -> None:
    """The scale figure's PNG from its points (also for --replot of a saved JSON)."""
    import matplotlib  # lazily: only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["size"] for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [("list", "lxctool list", "C0", "-"), ("lxc_list", "lxc list -c ns4 (anchor)", "C0", "--"),
              ("compare", "lxctool compare (0.2 s interval)", "C1", "-"),
              ("launch", "lxctool launch", "C2", "-"), ("lxc_launch", "lxc launch + IPv4 (anchor)", "C2", "--")]
    for key, label, colour, style in series:
        if all(key in p for p in pts):
            ax1.plot(x, [p[key] for p in pts], style, color=colour, marker="o", label=label)
    ax1.set(xlabel="running containers", ylabel="seconds (median)", title="wall time per call")
    ax1.legend(fontsize=8)
    ax2.plot(x, [p["list_requests"] for p in pts], "-o", color="C0", label="list")
    ax2.plot(x, [p["compare_requests"] for p in pts], "--s", color="C1", markersize=9, mfc="none",
             label="compare (one sample)")
    ax2.set(xlabel="running containers", ylabel="LXD requests per call", title="LXD requests per call",
            ylim=(0, max(4, max(p["compare_requests"] for p in pts) + 1)))
    ax2.legend(fontsize=8)
    fig.suptitle(f"lxctool vs LXD's tools, {header.get('date')}, {header.get('cpus')} CPUs, "
                 f"LXD {header.get('lxd')}, {header.get('storage')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _pair(mine: float | None, other: float | None) -> str:
    return "" if mine is None or other is None else f"{mine:.2f} / {other:.2f}"


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
