"""Built images: list against their recipes, delete, export to one file, import, readiness checks."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from lxctool.core.errors import LxdError, NotFound, PreflightError, SpecError
from lxctool.images.build import HASH_PROPERTY, READINESS_PROPERTY, RECIPE_PROPERTY, SELF_HASH_PROPERTY, current_image, forget_unaliased, import_tarball, self_hash
from lxctool.images.recipes import find_recipe, load_recipe
from lxctool.lxd.client import Lxd
from lxctool.lxd.views import Image, Instance
from lxctool.report.progress import progress


def recipe_status(props: Mapping[str, str]) -> str:
    """current / recipe changed / parent changed / builder changed / no recipe / invalid recipe."""
    name = props.get(RECIPE_PROPERTY, "")
    if find_recipe(name) is None:
        return "no recipe"
    try:
        recipe = load_recipe(name)
    except SpecError:
        return "invalid recipe"
    if props.get(HASH_PROPERTY) == recipe.digest():
        return "current"
    if props.get(SELF_HASH_PROPERTY) and props.get(SELF_HASH_PROPERTY) == self_hash(recipe):
        return "parent changed" if recipe.parent is not None else "builder changed"
    return "recipe changed"


def list_images(lxd: Lxd) -> list[dict[str, Any]]:
    """One row per alias of an lxctool-built image (unaliased ones too), sorted by alias."""
    rows = []
    for img in map(Image, lxd.images()):
        props = img.properties
        if not props.get(RECIPE_PROPERTY):
            continue
        aliases: list[str | None] = [*img.aliases] or [None]
        for alias in aliases:
            rows.append({"alias": alias, "recipe": props[RECIPE_PROPERTY],
                         "fingerprint": img.fingerprint[:12], "size_bytes": img.size, "built_at": img.created_at,
                         "status": recipe_status(props), "hash": props.get(HASH_PROPERTY)})
    return sorted(rows, key=lambda r: (r["alias"] is None, r["alias"] or "", r["fingerprint"]))


def require_image(lxd: Lxd, name: str) -> dict[str, Any]:
    """The image alias NAME points to; NotFound naming the build command otherwise."""
    img = current_image(lxd, name)
    if img is None:
        hint = f"; build it with `lxctool image build {name}`" if find_recipe(name) else ""
        raise NotFound(f"NAME: no image {name!r} on this host{hint}; see `lxctool image list`")
    return img


def delete_image(lxd: Lxd, name: str) -> tuple[str, list[str]]:
    """Remove alias NAME, and its image when no other alias points to it.

    Returns (fingerprint, the other aliases that keep the image); an empty list means the image went too.
    """
    img = Image(require_image(lxd, name))
    lxd.delete_alias(name)
    others = [a for a in img.aliases if a != name]
    if not others:
        lxd.delete_image(img.fingerprint)
    return img.fingerprint, others


def export_image(lxd: Lxd, name: str, dest: str) -> int:
    """Write image NAME as one unified tarball to DEST (written beside it, then renamed)."""
    img = require_image(lxd, name)
    target = Path(dest)
    if not target.parent.is_dir():
        raise PreflightError(f"FILE: folder {target.parent} does not exist")
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        size = lxd.export_image(img["fingerprint"], str(partial))
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return size


def import_image(lxd: Lxd, file: str, alias: str | None = None) -> dict[str, Any]:
    """Import a tarball from `image export`; alias it by --alias or the recipe it came from."""
    old = current_image(lxd, alias) if alias else None
    fingerprint = import_tarball(lxd, Path(file))
    img = Image(lxd.image(fingerprint) or {})
    name = alias or img.properties.get(RECIPE_PROPERTY)
    if not name:
        raise PreflightError(f"--alias: {file} was not built by lxctool (no {RECIPE_PROPERTY} property); "
                             "give the alias with --alias NAME")
    old = old or current_image(lxd, name)
    lxd.set_alias(name, fingerprint, img.properties.get("description", ""))
    if old and old["fingerprint"] != fingerprint:
        forget_unaliased(lxd, old["fingerprint"])
    return {"name": name, "fingerprint": fingerprint}


def readiness_of(inst: Instance) -> list[str]:
    """The readiness command recorded from the container's image (LXD copies image.* properties)."""
    raw = inst.config.get(f"image.{READINESS_PROPERTY}") or ""
    try:
        argv = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(a) for a in argv] if isinstance(argv, list) else []


def wait_ready(lxd: Lxd, name: str, timeout: float, interval: float = 1.0) -> dict[str, Any]:
    """Run the container's readiness check until it succeeds or TIMEOUT passes; report the outcome."""
    inst = Instance(lxd.require_instance(name), lxd.project)
    argv = readiness_of(inst)
    image = inst.config.get(f"image.{RECIPE_PROPERTY}")
    out: dict[str, Any] = {"name": name, "image": image, "command": " ".join(argv), "ready": True,
                           "seconds": 0.0, "output": ""}
    if not argv:
        return out
    if not inst.running:
        raise PreflightError(f"NAME: {name} is {inst.status.lower()}; start it first")
    started = time.monotonic()
    announced = False
    while True:
        try:
            res = lxd.exec(name, argv, timeout=max(5.0, min(30.0, timeout)))
            ok, output = res.exit_code == 0, (res.stdout + res.stderr).strip()
        except LxdError as exc:
            ok, output = False, exc.message
        out["seconds"] = round(time.monotonic() - started, 1)
        if ok:
            return out
        if out["seconds"] >= timeout:
            out.update(ready=False, output=output.splitlines()[-1] if output else "(no output)")
            return out
        if not announced:
            progress(f"{name}: waiting for its {image or 'image'} readiness check")
            announced = True
        time.sleep(interval)
