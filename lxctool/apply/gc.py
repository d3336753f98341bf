"""Find and remove the debris lxctool marked as temporary when its owner process is gone.

Temporary things carry their owner (host/owner.py): verify peers (`vf-peer-*`) and experiment
scratch containers (`ex-*`) the `user.lxctool.temp-owner` config key, workloads and net check
listeners inside containers the LXCTOOL_TEMP_OWNER environment variable, image build folders an
`.lxctool-owner` file. After a kill -9 the owner is dead, so `lxctool gc` (and the next run of
the same command) removes them. Nothing without a marker is touched; IFB devices are lxctool's
by their alias and debris when their container is gone.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxctool.core.names import MANAGED_KEY, TEMP_OWNER_KEY
from lxctool.host import owner as owners

KINDS = ("container", "process", "build-folder", "ifb")


@dataclass(frozen=True)
class Debris:
    """One leftover: what it is, its name, and who left it."""

    kind: str
    name: str
    detail: str

    def row(self) -> dict[str, str]:
        """As a data row."""
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


def mark(lxd: Any, name: str) -> None:
    """Record this process as the owner of container NAME (a temporary one)."""
    lxd.patch_instance(name, {"config": {TEMP_OWNER_KEY: owners.token()}})


def settle(lxd: Any, name: str, config_hash: str) -> None:
    """NAME is meant to stay now: drop its temporary marker (LXD unsets a key PATCHed to '') and
    record the hash of its config without the marker, so a re-plan sees it as it was asked."""
    from lxctool.core.model import HASH_KEY  # lazy: only the kind being collected needs it

    lxd.patch_instance(name, {"config": {TEMP_OWNER_KEY: "", HASH_KEY: config_hash}})


def mark_plan(ops: list[Any], name: str) -> str | None:
    """Make the CREATE of NAME in a launch plan carry this process as temporary owner (in place).

    The container is marked from its creation on, so a kill -9 at any later moment leaves
    something `lxctool gc` recognises. Only for containers that are never re-planned (verify
    peers, experiment scratch), or settled with settle(..., config_hash) which puts back the hash
    of the unmarked config. Returns that hash (None when the plan creates no NAME).
    """
    from dataclasses import replace  # lazy: only the kind being collected needs it

    from lxctool.core.plan import OpKind  # lazy: only the kind being collected needs it

    for i, op in enumerate(ops):
        if op.kind == OpKind.CREATE and op.target == name and op.payload is not None:
            original = str(op.payload.config_hash())
            payload = replace(op.payload, config={**op.payload.config, **temp_config()})
            ops[i] = replace(op, payload=payload)
            return original
    return None


def temp_config() -> dict[str, str]:
    """Config keys that mark a container as this process's temporary one (set at creation)."""
    return {TEMP_OWNER_KEY: owners.token()}


def _settle_creations(lxd: Any, timeout: float = 30.0) -> None:
    """Wait for instance creations LXD still runs: one a killed lxctool started appears only then."""
    from lxctool.core.errors import LxctoolError  # lazy: only the kind being collected needs it
    from lxctool.lxd.paths import path  # lazy: only the kind being collected needs it

    try:
        groups = lxd.get(path("operations"), recursion=1) or {}
    except LxctoolError:
        return
    for op in [o for group in groups.values() for o in group or []]:
        if op.get("status_code") in (100, 103, 105) and "creat" in str(op.get("description", "")).lower() \
                and (op.get("resources") or {}).get("instances"):
            try:
                lxd.wait_operation(path("operations", op["id"]), timeout=timeout)
            except LxctoolError:
                pass  # failed or still running: the listing below shows what exists


def containers(lxd: Any, prefix: str = "") -> list[Debris]:
    """Temporary containers whose owner is gone."""
    _settle_creations(lxd)
    out = []
    for inst in lxd.instances_full():
        config = inst.get("config") or {}
        owner = config.get(TEMP_OWNER_KEY)
        if owner and config.get(MANAGED_KEY) == "true" and inst["name"].startswith(prefix) \
                and not owners.alive(owner):
            out.append(Debris("container", inst["name"], f"{inst.get('status', '').lower()}, owner {owner} gone"))
    return out


def processes(container_pids: dict[int, str] | None = None) -> list[Debris]:
    """Processes lxctool started inside containers (workloads, net check listeners) whose owner is gone."""
    from lxctool.host.cgroups import container_of_pid  # lazy: only the kind being collected needs it

    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        owner = owners.environ_owner(pid)
        if owner is None or owners.alive(owner):
            continue
        where = container_of_pid(pid)
        if where is None:
            continue  # only inside containers: lxctool never leaves host processes running
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        out.append(Debris("process", f"{where}:{pid}", f"{cmd[:60]}, owner {owner} gone"))
    return out


def build_folders() -> list[Debris]:
    """Image build work folders (and the /proc, /sys, /dev mounts in them) whose owner is gone."""
    from lxctool.images.debootstrap import stale_work_folders  # lazy: images are only for this kind

    return [Debris("build-folder", str(folder), f"{len(mounts)} mount(s) {' '.join(mounts)}, owner {who} gone")
            for folder, who, mounts in stale_work_folders()]


def ifbs(lxd: Any) -> list[Debris]:
    """lxctool's IFB devices whose container no longer exists."""
    from lxctool.host import shaping  # lazy: only the kind being collected needs it

    return [Debris("ifb", ifb, "its container is gone") for ifb in shaping.remove_orphans(lxd, dry_run=True)]


def find(lxd: Any, kinds: tuple[str, ...] = KINDS) -> list[Debris]:
    """Every piece of debris of the given kinds."""
    found: list[Debris] = []
    if "container" in kinds:
        found += containers(lxd)
    if "process" in kinds:
        found += processes()
    if "build-folder" in kinds:
        found += build_folders()
    if "ifb" in kinds:
        found += ifbs(lxd)
    return found


def remove(lxd: Any, debris: list[Debris]) -> list[Debris]:
    """Remove each piece; return those removed (a piece gone meanwhile counts as removed)."""
    done = []
    for item in debris:
        if item.kind == "container":
            ok = lxd.remove_instance(item.name)
        elif item.kind == "process":
            pid = int(item.name.rsplit(":", 1)[1])
            ok = _kill_group(pid)
        elif item.kind == "build-folder":
            ok = _remove_folder(Path(item.name))
        else:
            from lxctool.host import shaping  # lazy: only the kind being collected needs it

            ok = item.name in shaping.remove_orphans(lxd) or not Path(f"/sys/class/net/{item.name}").exists()
        if ok:
            done.append(item)
    return done


def reclaim(lxd: Any, kinds: tuple[str, ...], say: Any) -> list[Debris]:
    """What the next run of a command does first: remove its kinds of debris and say so."""
    removed = remove(lxd, find(lxd, kinds))
    for item in removed:
        say(f"removed {item.kind} {item.name} left by an interrupted run ({item.detail})")
    return removed


def _kill_group(pid: int) -> bool:
    try:
        pgid = os.getpgid(pid)
        os.killpg(pgid, signal.SIGKILL)  # the workload's whole session (setsid), e.g. `sleep | nc`
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return True


def _remove_folder(folder: Path) -> bool:
    from lxctool.images.debootstrap import remove_work_folder  # lazy: images are only for this kind

    return remove_work_folder(folder)
