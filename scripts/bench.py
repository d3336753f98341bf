#!/usr/bin/env python3
"""lxctool beside LXD's own Go tools, in one run: each figure alternates lxctool and its anchor,
takes the median of at least 5 runs and prints the ratio. The one benchmark entry point.

Everything runs in a throw-away LXD project `bench-<hex>` (the host's images, pool and lxctool0
bridge; its own profiles) with containers named `bench-<hex>-...`; exactly what the run made is
deleted at the end, also on Ctrl-C or SIGTERM. lxd-benchmark is only ever given the local alias
`busybox` (without one it would fetch an image from a server). Timings on a shared 2-core machine
are noisy: only the ratios within one run mean something.

Usage: .venv/bin/python scripts/bench.py {all,launch,delete,limits,scale,startup,image,debian}
       [--runs N] [--sizes 1,10,50,100] [--quick] [--out bench/results]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from benchlib import Bench, median, plot_scale, ratio_row  # noqa: E402

# Targets of issue 12 (ratios to the anchor in the same run; --help is the one absolute figure).
# "hard" targets are the ones an explanation does not replace.
TARGETS: dict[str, tuple[float, str, bool]] = {
    "launch": (1.10, "ratio", True),
    "limits": (1.20, "ratio", False),
    "list-50": (1.00, "ratio", True),
    "list-100": (1.00, "ratio", True),
    "list-requests": (2, "requests", True),
    "compare-requests": (2, "requests", True),
    "compare-cpu-100": (1.0, "seconds", False),
    "help": (0.10, "seconds", True),
}
QUICK_SLACK = 1.30  # --quick fails only when a figure is more than 30% past its target


def fig_startup(b: Bench) -> None:
    """`lxctool --help` (absolute) and `list` on an empty project vs `lxc list`."""
    helps = [b.timed([b.lxctool, "--help"]).wall for _ in range(b.runs)]
    b.add({"figure": "help", "what": "lxctool --help", "lxctool_s": median(helps), "runs": len(helps),
           "anchor": "(absolute target)", "value": median(helps)})
    lt, lc = b.alternate(lambda: b.timed([b.lxctool, "list", "--format", "csv"], env=b.env),
                         lambda: b.timed(["lxc", "list", "-c", "ns4", "--format", "csv", "--project", b.project]))
    b.add(ratio_row("list-empty", "lxctool list (empty project)", lt, "lxc list -c ns4 --format csv", lc))


def fig_launch(b: Bench, fleet: int | None = None) -> tuple[list[float], list[float]]:
    """lxctool launch (defaults: busybox, IPv4 and readiness wait) vs lxc launch + IPv4 wait."""
    made: list[str] = []

    def ours() -> Any:
        name = b.name("l")
        made.append(name)
        return b.timed([b.lxctool, "launch", name], env=b.env)

    def theirs() -> Any:
        name = b.name("c")
        made.append(name)
        return b.lxc_launch_wait(name)

    lt, lc = b.alternate(ours, theirs)
    b.delete_instances(made)
    if fleet is None:
        b.add(ratio_row("launch", "lxctool launch NAME", lt, "lxc launch + wait IPv4", lc))
    return [r.wall for r in lt], [r.wall for r in lc]


def fig_delete(b: Bench, count: int = 20) -> None:
    """One `lxctool delete` of COUNT names vs `lxd-benchmark delete`, on fleets lxd-benchmark made."""
    if not b.have("lxd-benchmark"):
        b.note("delete: lxd-benchmark is not installed; skipped")
        return

    def ours() -> Any:
        names = b.benchmark_launch(count)
        return b.timed([b.lxctool, "delete", "--force", *names], env=b.env)

    def theirs() -> Any:
        b.benchmark_launch(count)
        return b.timed(["lxd-benchmark", "delete", "--project", b.project])

    lt, lc = b.alternate(ours, theirs, warm_up=False)  # 20 launches per round: no warm-up rounds
    b.add(ratio_row("delete", f"lxctool delete of {count} names", lt, f"lxd-benchmark delete ({count})", lc))


def fig_limits(b: Bench) -> None:
    """A live memory limit change: `lxctool limits NAME --mem X` vs `lxc config set`."""
    name = b.name("live")
    b.timed([b.lxctool, "launch", name, "--mem", "200MB"], env=b.env)
    sizes = iter(range(201, 1000))
    try:
        lt, lc = b.alternate(
            lambda: b.timed([b.lxctool, "limits", name, "--mem", f"{next(sizes)}MB", "--format", "csv"], env=b.env),
            lambda: b.timed(["lxc", "config", "set", name, f"limits.memory={next(sizes)}MB", "--project", b.project]))
    finally:
        b.delete_instances([name])
    b.add(ratio_row("limits", "lxctool limits NAME --mem X", lt, "lxc config set NAME limits.memory=X", lc))


def fig_scale(b: Bench, sizes: list[int], with_launch: bool = True) -> None:
    """list and compare (one sample) at each fleet size, and launch at that size, beside lxc."""
    points: list[dict[str, Any]] = []
    for size in sizes:
        b.grow_fleet(size)
        lt, lc = b.alternate(lambda: b.timed([b.lxctool, "list", "--all", "--format", "csv"], env=b.env),
                             lambda: b.timed(["lxc", "list", "-c", "ns4", "--format", "csv", "--project", b.project]))
        rows = {len(r.stdout.splitlines()) for r in lt} | {len(r.stdout.splitlines()) for r in lc}
        row = ratio_row(f"list-{size}", f"lxctool list --all ({size} running)", lt,
                        "lxc list -c ns4 --format csv", lc)
        row["rows"] = sorted(rows)
        b.add(row)
        ct, cc = b.alternate(lambda: b.timed([b.lxctool, "compare", "--format", "json", "--interval", "0.2"],
                                             env=b.env),
                             lambda: b.timed(["lxc", "list", "-c", "ns4", "--format", "csv", "--project", b.project]))
        crow = ratio_row(f"compare-{size}", f"lxctool compare --format json ({size} running, 0.2 s interval)",
                         ct, "lxc list -c ns4 --format csv", cc)
        crow["value"] = crow["lxctool_cpu_s"]
        b.add(crow)
        point = {"size": size, "list": row["lxctool_s"], "lxc_list": row["anchor_s"],
                 "compare": crow["lxctool_s"], "compare_cpu": crow["lxctool_cpu_s"],
                 "list_requests": row["requests"], "compare_requests": crow["requests"]}
        if with_launch:
            ours, theirs = fig_launch(b, fleet=size)
            point.update(launch=median(ours), lxc_launch=median(theirs))
        points.append(point)
        b.progress(f"scale {size}: list {row['lxctool_s']:.3f}s ({row['requests']} req), lxc list "
                   f"{row['anchor_s']:.3f}s, compare {crow['lxctool_s']:.3f}s wall {crow['lxctool_cpu_s']:.3f}s CPU")
    b.results["scale"] = points
    b.add({"figure": "list-requests", "what": "LXD requests per lxctool list (max over sizes)",
           "value": max(p["list_requests"] for p in points), "runs": len(points)})
    b.add({"figure": "compare-requests", "what": "LXD requests per compare sample (max over sizes)",
           "value": max(p["compare_requests"] for p in points), "runs": len(points)})
    if 100 in sizes:
        cpu = next(p["compare_cpu"] for p in points if p["size"] == 100)
        b.add({"figure": "compare-cpu-100", "what": "CPU seconds of one compare (100 running)", "value": cpu,
               "runs": b.runs})


def fig_image(b: Bench) -> None:
    """image build: cold (a busybox-based recipe rebuilt with --force) and cached (unchanged: skipped)."""
    recipes = Path(tempfile.mkdtemp(prefix="bench-recipes-"))
    b.cleanup_paths.append(recipes)
    alias = f"bench{b.hex}"
    (recipes / f"{alias}.yaml").write_text((REPO / "images" / "busybox.yaml").read_text())
    env = {**b.env, "LXCTOOL_IMAGES_DIR": str(recipes)}
    b.cleanup_aliases.append(alias)
    b.timed([b.lxctool, "image", "build", alias], env=env)
    tarball = recipes / "export.tar.zst"
    b.timed([b.lxctool, "image", "export", alias, str(tarball)], env=env)
    imported = f"{alias}-imp"
    b.cleanup_aliases.append(imported)

    def anchor_import() -> Any:
        b.drop_alias(imported)
        return b.timed(["lxc", "image", "import", str(tarball), "--alias", imported])

    cold, imp = b.alternate(lambda: b.timed([b.lxctool, "image", "build", alias, "--force"], env=env), anchor_import)
    b.add(ratio_row("image-cold", "lxctool image build (busybox recipe, --force)", cold,
                    "lxc image import of the same tarball", imp))
    cached, show = b.alternate(lambda: b.timed([b.lxctool, "image", "build", alias], env=env),
                               lambda: b.timed(["lxc", "image", "info", alias]))
    b.add(ratio_row("image-cached", "lxctool image build (unchanged: skipped)", cached, "lxc image info", show))


def fig_debian(b: Bench) -> None:
    """Launch of the debian image on the btrfs pool vs on a dir pool (needs the image built)."""
    if b.root.image_alias("debian") is None:
        b.note("debian: the debian image is not built (lxctool image build debian); skipped, not built here")
        return
    profile = b.dir_pool_profile()
    made: list[str] = []

    def launch(extra: list[str]) -> Any:
        name = b.name("deb")
        made.append(name)
        result = b.timed([b.lxctool, "launch", name, "--image", "debian", *extra], env=b.env)
        b.delete_instances([name])
        return result

    btrfs, dirp = b.alternate(lambda: launch([]), lambda: launch(["--profile", profile]))
    b.add(ratio_row("debian-pool", "lxctool launch --image debian on btrfs", btrfs,
                    "the same on a dir pool", dirp))


FIGURES: dict[str, Callable[[Bench], None]] = {
    "startup": fig_startup, "launch": lambda b: (fig_launch(b), None)[1], "limits": fig_limits,
    "delete": fig_delete, "image": fig_image, "debian": fig_debian,
}


def check(rows: list[dict[str, Any]], slack: float) -> tuple[list[str], list[str]]:
    """(hard, soft) figures past their target: ratios and seconds times slack, requests exactly."""
    hard_misses: list[str] = []
    soft_misses: list[str] = []
    for row in rows:
        if row["figure"] not in TARGETS:
            continue
        target, kind, hard = TARGETS[row["figure"]]
        value = row.get("ratio") if kind == "ratio" else row.get("value")
        if value is None:
            continue
        row["target"] = target
        row["meets_target"] = value <= target
        limit = target if kind == "requests" else target * slack
        # absolute seconds are reported, never a gate: the CI guard compares within a run only
        if value > limit:
            (hard_misses if hard and kind != "seconds" else soft_misses).append(
                f"{row['figure']}: {value:.3g} > {limit:.3g} ({kind}, target {target}, {'hard' if hard else 'soft'})")
    return hard_misses, soft_misses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure", nargs="?", default="all", choices=["all", "scale", *FIGURES])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure and tool (at least 5)")
    ap.add_argument("--sizes", default="1,10,50,100", help="fleet sizes for list/compare/launch scaling")
    ap.add_argument("--quick", action="store_true",
                    help="CI: startup, launch, limits, and list/compare at 50 containers; exit 1 when a "
                         "hard target is missed by more than 30%% (soft ones are printed as warnings)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--replot", type=Path, metavar="JSON", help="draw the scale PNG of a saved result again, then exit")
    ap.add_argument("--cleanup", metavar="HEX", help="remove what an interrupted run bench-HEX left, then exit")
    args = ap.parse_args()
    if args.replot:
        import json

        saved = json.loads(args.replot.read_text())
        plot_scale(saved["scale"], saved["machine"],
                   args.replot.with_name(args.replot.stem.replace("bench-", "scale-") + ".png"))
        return 0
    if args.cleanup:
        leftover = Bench(runs=5, hex_id=args.cleanup)
        leftover.cleanup_aliases += [f"bench{args.cleanup}", f"bench{args.cleanup}-imp"]
        leftover._pool = f"bench-{args.cleanup}-dir" if leftover.root.storage_pool(f"bench-{args.cleanup}-dir") else None
        leftover.teardown()
        return 0
    if args.runs < 5:
        ap.error("--runs: at least 5 (a median of fewer is noise on these machines)")
    sizes = [50] if args.quick else sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    b = Bench(runs=args.runs, hex_id=secrets.token_hex(3))

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    failed: list[str] = []
    try:
        b.setup()
        if args.quick:
            todo = ["startup", "launch", "limits", "scale"]
        elif args.figure == "all":
            todo = ["startup", "launch", "limits", "scale", "delete", "image", "debian"]
        else:
            todo = [args.figure]
        for figure in todo:
            b.progress(f"figure {figure}")
            try:
                if figure == "scale":
                    fig_scale(b, sizes, with_launch=not args.quick)
                    b.delete_fleet()
                else:
                    FIGURES[figure](b)
            except (SystemExit, Exception) as exc:  # noqa: BLE001 - one failed figure must not lose the others
                b.note(f"{figure}: failed, no figure: {exc}")
                failed.append(figure)
                b.wait_for_daemon()
    except KeyboardInterrupt:
        b.progress("interrupted: removing what this run made")
        b.teardown()
        return 130
    finally:
        b.teardown()
    hard_misses, soft_misses = check(b.rows, QUICK_SLACK if args.quick else 1.0)
    failures = hard_misses + soft_misses
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    md, js = b.write(args.out, stamp, failures)
    print(md.read_text())
    print(f"bench: wrote {md} and {js}", file=sys.stderr)
    if "scale" in b.results and len(b.results["scale"]) > 1:
        png = args.out / f"scale-{stamp}.png"
        b.plot(png)
        print(f"bench: wrote {png}", file=sys.stderr)
    for miss in soft_misses:
        print(f"bench: {'warning' if args.quick else 'missed'}: {miss}", file=sys.stderr)
    for miss in hard_misses:
        print(f"bench: {'FAIL' if args.quick else 'missed'}: {miss}", file=sys.stderr)
    # the CI guard fails on hard targets only: a soft one (live change) is a reported reason, not a gate
    return 1 if args.quick and (hard_misses or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
