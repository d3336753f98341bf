"""Image recipes (images/NAME.yaml) -> root filesystem -> LXD image with an alias.

A recipe's hash (its text and its parents') is stored as the image property
`lxctool.hash`: an unchanged recipe is not rebuilt. The alias moves only after the new
image imported completely.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import LxdError, SpecError
from .lxd import Lxd

RECIPE_KEYS = {"description", "base", "files", "readiness", "properties"}
FILE_KEYS = {"path", "content", "mode"}
BASES = {"busybox"}
HASH_PROPERTY = "lxctool.hash"


def progress(message: str, started: float | None = None) -> None:
    """Phase and elapsed time on stderr."""
    import sys

    elapsed = f" [{time.monotonic() - started:.1f}s]" if started is not None else ""
    print(f"lxctool: image: {message}{elapsed}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class FileSpec:
    """A file placed in the image root."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    """A validated image recipe."""

    name: str
    source: Path
    base: str
    description: str = ""
    files: tuple[FileSpec, ...] = ()
    readiness: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        """Hash of the recipe text (parents join here when recipes derive from others)."""
        return hashlib.sha256(self.source.read_bytes()).hexdigest()[:16]


def load_recipe(name_or_path: str) -> Recipe:
    """Read and validate a recipe; SpecError lists every problem with its path."""
    import yaml

    path = paths.find_file("images", name_or_path)
    if path is None:
        known = sorted(p.stem for p in paths.data_dir("images").glob("*.yaml"))
        raise SpecError(f"NAME: no recipe {name_or_path!r}; use one of: {', '.join(known)}")
    label = path.name
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{label}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{label}: a recipe is a mapping")
    errors = [f"{label}: {k}: unknown key; use one of {', '.join(sorted(RECIPE_KEYS))}"
              for k in data if k not in RECIPE_KEYS]
    base = data.get("base")
    if base not in BASES:
        errors.append(f"{label}: base: {base!r} is not a known base; use one of {', '.join(sorted(BASES))}")
    files = []
    for i, f in enumerate(data.get("files") or []):
        where = f"{label}: files[{i}]"
        if not isinstance(f, dict):
            errors.append(f"{where}: must be a mapping with path and content")
            continue
        errors += [f"{where}.{k}: unknown key; use {', '.join(sorted(FILE_KEYS))}" for k in f if k not in FILE_KEYS]
        if not str(f.get("path", "")).startswith("/"):
            errors.append(f"{where}.path: must be an absolute path")
        try:
            mode = int(str(f.get("mode", "0644")), 8)
        except ValueError:
            errors.append(f"{where}.mode: {f.get('mode')!r} is not an octal mode like \"0755\"")
            mode = 0o644
        files.append(FileSpec(str(f.get("path")), str(f.get("content", "")), mode))
    readiness = data.get("readiness") or []
    if not isinstance(readiness, list) or not all(isinstance(a, str) for a in readiness):
        errors.append(f"{label}: readiness: must be a command as a list of strings")
    props = data.get("properties") or {}
    if not isinstance(props, dict):
        errors.append(f"{label}: properties: must be a mapping")
    if errors:
        raise SpecError(errors)
    return Recipe(name=path.stem, source=path, base=str(base), description=str(data.get("description", "")),
                  files=tuple(files), readiness=tuple(readiness),
                  properties={str(k): str(v) for k, v in props.items()})


def _busybox_root(root: Path) -> None:
    """A root filesystem of static busybox with every applet linked."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise LxdError("busybox is not installed on the host (Debian package busybox-static)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "proc", "sys", "dev", "tmp",
              "root", "var/run", "var/log", "run", "usr/share/udhcpc", "www"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    listing = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in listing.split():
        link = root / applet
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    os.chmod(root / "tmp", 0o1777)


def _place_files(root: Path, files: tuple[FileSpec, ...]) -> None:
    for f in files:
        target = root / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(f.content)
        os.chmod(target, f.mode)


def _metadata(recipe: Recipe) -> str:
    import yaml

    arch = platform.machine()
    props = {"description": recipe.description or recipe.name, "name": recipe.name, **recipe.properties}
    return yaml.safe_dump({"architecture": arch, "creation_date": int(time.time()), "properties": props})


def current_image(lxd: Lxd, alias: str) -> dict[str, Any] | None:
    """The image an alias points to, or None."""
    a = lxd.image_alias(alias)
    return lxd.image(a["target"]) if a else None


def build(lxd: Lxd, name: str, force: bool = False) -> dict[str, Any]:
    """Build a recipe into an LXD image under its name; skip when the recipe is unchanged."""
    recipe = load_recipe(name)
    digest = recipe.digest()
    existing = current_image(lxd, recipe.name)
    if existing and existing.get("properties", {}).get(HASH_PROPERTY) == digest and not force:
        progress(f"{recipe.name} is up to date ({existing['fingerprint'][:12]}); --force rebuilds it")
        return {"name": recipe.name, "fingerprint": existing["fingerprint"], "built": False}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lxctool-image-") as tmp:
        root = Path(tmp) / "rootfs"
        progress(f"{recipe.name}: building root filesystem from base {recipe.base}", started)
        if recipe.base == "busybox":
            _busybox_root(root)
        _place_files(root, recipe.files)
        (Path(tmp) / "metadata.yaml").write_text(_metadata(recipe))
        tarball = Path(tmp) / f"{recipe.name}.tar.gz"
        progress(f"{recipe.name}: packing", started)
        with tarfile.open(tarball, "w:gz", compresslevel=1) as tar:
            tar.add(Path(tmp) / "metadata.yaml", arcname="metadata.yaml")
            tar.add(root, arcname="rootfs")
        progress(f"{recipe.name}: importing into LXD", started)
        props = {HASH_PROPERTY: digest, "lxctool.recipe": recipe.name,
                 "description": recipe.description or recipe.name, **recipe.properties}
        try:
            fingerprint = lxd.import_image(str(tarball), props)
        except LxdError as exc:
            if "fingerprint already exists" not in str(exc):
                raise
            fingerprint = hashlib.sha256(tarball.read_bytes()).hexdigest()
    lxd.set_alias(recipe.name, fingerprint, recipe.description)
    progress(f"{recipe.name}: done, alias {recipe.name} -> {fingerprint[:12]}", started)
    return {"name": recipe.name, "fingerprint": fingerprint, "built": True}
