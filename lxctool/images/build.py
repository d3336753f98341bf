"""Recipes -> root filesystem -> LXD image under the recipe's name, built on this host.

A recipe's hash (its text and its parents' hashes) is stored as the image property
`lxctool.hash`: an unchanged recipe is skipped unless forced; a changed recipe or parent is
rebuilt. The alias moves only after the new image imported completely; a failure leaves the
old image and alias as they were, and removes its work folder after undoing every mount.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from lxctool.core.errors import LxdError, PreflightError
from lxctool.host import run
from lxctool.images import debootstrap as deb
from lxctool.images.recipes import FileSpec, Recipe, load_recipe
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Image
from lxctool.report.progress import progress

HASH_PROPERTY = "lxctool.hash"
SELF_HASH_PROPERTY = "lxctool.recipe_hash"
RECIPE_PROPERTY = "lxctool.recipe"
READINESS_PROPERTY = "lxctool.readiness"


class Progress:
    """Phase and elapsed time on stderr."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        progress(f"image: [{time.monotonic() - self.started:6.1f}s] {message}")


def self_hash(recipe: Recipe) -> str:
    """Hash of the recipe's own text (to tell 'recipe changed' from 'a parent changed')."""
    return hashlib.sha256(recipe.text.encode()).hexdigest()[:16]


def current_image(lxd: Lxd, alias: str) -> dict[str, Any] | None:
    """The image an alias points to, or None."""
    a = lxd.image_alias(alias)
    return lxd.image(a["target"]) if a else None


def is_current(image: dict[str, Any] | None, recipe: Recipe) -> bool:
    """Whether IMAGE was built from exactly this recipe and parents."""
    return image is not None and Image(image).properties.get(HASH_PROPERTY) == recipe.digest()


def build(lxd: Lxd, name: str, force: bool = False, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build a recipe (and any parent that is missing or changed) into an LXD image alias."""
    recipe = load_recipe(name)
    say = say or Progress()
    result: dict[str, Any] = {}
    for step in recipe.chain():
        # one build of a recipe at a time on this host: a waiting build finds it current and skips
        with deb.build_lock(f"image-{step.name}"):
            existing = current_image(lxd, step.name)
            if is_current(existing, step) and not (force and step is recipe):
                if step is recipe:
                    say(f"{step.name} is up to date ({existing['fingerprint'][:12]}); --force rebuilds it")  # type: ignore[index]
                result = {"name": step.name, "fingerprint": existing["fingerprint"], "built": False,  # type: ignore[index]
                          "hash": step.digest()}
                continue
            if step is not recipe:
                say(f"{recipe.name}: parent {step.name} is not built or changed: building it first")
            result = _build_one(lxd, step, existing, say)
    return result


def _build_one(lxd: Lxd, recipe: Recipe, old: dict[str, Any] | None, say: Callable[[str], None]) -> dict[str, Any]:
    """Build one recipe whose parent image is current; import it, then move the alias."""
    with deb.workdir(recipe.name) as tmp:
        root = tmp / "rootfs"
        if recipe.base == "busybox":
            say(f"{recipe.name}: busybox root")
            busybox_root(root)
        elif recipe.base == "debootstrap":
            say(f"{recipe.name}: Debian {recipe.suite} ({recipe.variant}) base")
            deb.base_rootfs(recipe.suite, recipe.variant, root, say)
            (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
        else:
            parent = current_image(lxd, recipe.base)
            if parent is None:
                raise PreflightError(f"{recipe.name}: base {recipe.base} is not built")
            say(f"{recipe.name}: unpacking parent {recipe.base} ({parent['fingerprint'][:12]})")
            tarball = tmp / "parent.tar"
            lxd.export_image(parent["fingerprint"], str(tarball))
            deb.unpack(tarball, tmp)
            tarball.unlink()
            (tmp / "metadata.yaml").unlink(missing_ok=True)
        apply_steps(recipe, root, say)
        if recipe.root_base() == "debootstrap":
            debian_housekeeping(root)  # after the steps: installing systemd writes a machine-id
        (tmp / "metadata.yaml").write_text(metadata(recipe))
        tarball = tmp / f"{recipe.name}.tar.zst"
        say(f"{recipe.name}: packing ({du_bytes(root) // 2**20} MiB root)")
        deb.pack(root, tarball, tmp / "metadata.yaml")
        say(f"{recipe.name}: importing into LXD ({tarball.stat().st_size // 2**20} MiB)")
        fingerprint = import_tarball(lxd, tarball, properties(recipe))
    try:
        lxd.set_alias(recipe.name, fingerprint, recipe.description)
    except LxdError:
        if not old or old["fingerprint"] != fingerprint:
            lxd.delete_image(fingerprint)
        raise
    if old and old["fingerprint"] != fingerprint:
        forget_unaliased(lxd, old["fingerprint"])
    say(f"{recipe.name}: done, alias {recipe.name} -> {fingerprint[:12]}")
    return {"name": recipe.name, "fingerprint": fingerprint, "built": True, "hash": recipe.digest()}


def apply_steps(recipe: Recipe, root: Path, say: Callable[[str], None]) -> None:
    """packages, files, commands, services, in that order; every mount undone after."""
    needs_chroot = recipe.packages or recipe.commands or recipe.services or any(f.owner for f in recipe.files)
    if not needs_chroot:
        place_files(root, recipe.files)
        return
    with deb.Chroot(root, recipe.name) as ch:
        for group in recipe.packages:
            say(f"{recipe.name}: installing {' '.join(group)}")
            ch.apt_install(list(group))
        place_files(root, recipe.files)
        for f in recipe.files:
            if f.owner:
                ch.run(f"chown {f.owner} {f.path}", ["chown", f.owner, f.path])
        for i, command in enumerate(recipe.commands):
            say(f"{recipe.name}: commands[{i}]: {command.splitlines()[0][:70]}")
            ch.run(f"commands[{i}]", ["/bin/sh", "-ec", command])
        if recipe.services:
            say(f"{recipe.name}: enabling {' '.join(recipe.services)}")
            ch.run("services", ["systemctl", "enable", *recipe.services])
        if recipe.packages:
            ch.apt_clean()


def busybox_root(root: Path) -> None:
    """A root filesystem of static busybox with every applet linked."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise LxdError("busybox is not installed on the host (Debian package busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "proc", "sys", "dev", "tmp",
              "root", "var/run", "var/log", "run", "usr/share/udhcpc", "www"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    listing = run.run([busybox, "--list-full"]).stdout
    for applet in listing.split():
        link = root / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    os.chmod(root / "tmp", 0o1777)


def debian_housekeeping(root: Path) -> None:
    """Per-container identity: an empty machine-id (so DHCP client ids differ) and no hostname
    file (the container keeps the name LXD gives it)."""
    machine_id = root / "etc/machine-id"
    if machine_id.exists() or machine_id.is_symlink():
        machine_id.unlink()
        machine_id.write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").unlink(missing_ok=True)


def path_in_root(root: Path, path: str, _hops: int = 0) -> Path:
    """PATH as the image sees it: folder symlinks resolved against ROOT (as chroot would), never
    leaving it; an absolute link like /var/run -> /run must not lead to the host's /run."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    cur = root
    for i, part in enumerate(parts):
        if part == "..":
            cur = cur.parent if cur != root else root
            continue
        nxt = cur / part
        if nxt.is_symlink() and i < len(parts) - 1:
            if _hops > 40:
                raise LxdError(f"{path}: too many levels of symbolic links in the image")
            link = os.readlink(nxt)
            base = "" if link.startswith("/") else str(cur.relative_to(root))
            nxt = path_in_root(root, f"{base}/{link}", _hops + 1)
        cur = nxt
    return cur


def place_files(root: Path, files: tuple[FileSpec, ...]) -> None:
    """Write each file into the root (replacing a symlink rather than following it)."""
    for f in files:
        target = path_in_root(root, f.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(f.content)
        os.chmod(target, f.mode)


def properties(recipe: Recipe) -> dict[str, str]:
    """LXD image properties: the recipe's own, plus lxctool's hash, recipe name and readiness."""
    props = {"description": recipe.description or recipe.name, "name": recipe.name, **recipe.properties,
             HASH_PROPERTY: recipe.digest(), SELF_HASH_PROPERTY: self_hash(recipe),
             RECIPE_PROPERTY: recipe.name}
    if recipe.readiness:
        props[READINESS_PROPERTY] = recipe.readiness_json()
    if recipe.parent is not None:
        props["lxctool.parent"] = recipe.parent.name
    return props


def metadata(recipe: Recipe) -> str:
    """metadata.yaml of the unified tarball (properties travel with an exported file)."""
    import yaml  # lazy: ~25 ms, only when an image is built

    return yaml.safe_dump({"architecture": platform.machine(), "creation_date": int(time.time()),
                           "properties": properties(recipe)})


def import_tarball(lxd: Lxd, tarball: Path, props: dict[str, str] | None = None) -> str:
    """Import a unified tarball; an image that already exists with that content is reused."""
    try:
        return lxd.import_image(str(tarball), props)
    except LxdError as exc:
        if "already exists" not in str(exc):
            raise
    h = hashlib.sha256()
    with open(tarball, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def forget_unaliased(lxd: Lxd, fingerprint: str) -> None:
    """Delete an lxctool-built image no alias points to any more (containers keep their copy)."""
    record = lxd.image(fingerprint)
    img = Image(record or {})
    if record and not img.aliases and img.properties.get(RECIPE_PROPERTY):
        try:
            lxd.delete_image(fingerprint)
        except LxdError:
            pass


def du_bytes(root: Path) -> int:
    """Disk use of a tree in bytes (du, not following mounts)."""
    out = run.run(["du", "-sxb", str(root)], check=False).stdout.split()
    return int(out[0]) if out else 0
