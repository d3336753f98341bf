"""Image recipes (images/NAME.yaml) -> validated, frozen Recipe chains. No I/O beyond reading files.

A recipe starts from `busybox` (a static busybox root), `debootstrap` (a Debian root of a suite
and variant) or another recipe (its built image), then installs packages, places files, runs
commands in the root and enables services. Every error is collected with its path before any
work starts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxctool import paths
from lxctool.core.errors import SpecError
from lxctool.images.aptsources import debian_sources, host_codename, host_sources

BUILTIN_BASES = ("busybox", "debootstrap")
RECIPE_KEYS = ("description", "base", "debootstrap", "packages", "files", "commands", "services",
               "readiness", "properties")
FILE_KEYS = ("path", "content", "source", "mode", "owner", "setuid")
SPECIAL_BITS = 0o7000  # setuid, setgid, sticky: only with `setuid: true` on the file
MODE_ACCEPTED = ("an octal mode 0000-0777 like \"0755\" (4000/2000/1000, setuid/setgid/sticky, "
                 "only with setuid: true on the same file)")
DEBOOTSTRAP_KEYS = ("suite", "variant")
VARIANTS = ("minbase", "buildd", "fakechroot")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]+(:[a-z0-9]+)?([=/][A-Za-z0-9.+~:\-]+)?$")
DEBIAN_BUILD_FORMAT = 2  # 2: machine-id emptied after the packages (systemd's postinst writes one)
OWNER_RE = re.compile(r"^[a-z_][a-z0-9_\-]*(:[a-z_][a-z0-9_\-]*)?$|^\d+(:\d+)?$")


@dataclass(frozen=True)
class FileSpec:
    """A file placed in the image root."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = ""


@dataclass(frozen=True)
class Recipe:
    """One validated recipe; `parent` is the recipe it derives from (None for a built-in base)."""

    name: str
    source: Path
    base: str
    text: str
    description: str = ""
    suite: str = ""
    variant: str = "minbase"
    packages: tuple[tuple[str, ...], ...] = ()
    files: tuple[FileSpec, ...] = ()
    commands: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    readiness: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    parent: "Recipe | None" = None

    def digest(self) -> str:
        """Hash of this recipe's text and its parents' hashes (a root recipe: of its text alone)."""
        h = hashlib.sha256(self.text.encode())
        if self.base == "debootstrap":  # the format number changes when lxctool builds Debian roots differently
            h.update(f"\0debootstrap {self.suite} {self.variant} format {DEBIAN_BUILD_FORMAT}".encode())
        if self.parent is not None:
            h.update(b"\0parent " + self.parent.digest().encode())
        return h.hexdigest()[:16]

    def chain(self) -> list["Recipe"]:
        """This recipe's ancestors, the root first, ending with itself."""
        return ([*self.parent.chain()] if self.parent else []) + [self]

    def root_base(self) -> str:
        """The built-in base at the root of the chain (busybox or debootstrap)."""
        return self.chain()[0].base

    def readiness_json(self) -> str:
        """The readiness command as JSON, for the image property lxctool.readiness."""
        return json.dumps(list(self.readiness))


def recipe_names() -> list[str]:
    """Recipes in the images folder."""
    return sorted(p.stem for p in paths.data_dir("images").glob("*.yaml"))


def find_recipe(name_or_path: str) -> Path | None:
    """The recipe file for a name (images/NAME.yaml) or a path to a .yaml file."""
    return paths.find_file("images", name_or_path)


def image_family(image: str) -> str:
    """'debian' for an image whose recipe chain starts from debootstrap, else 'busybox' (the smallest)."""
    try:
        path = find_recipe(image)
        return "debian" if path is not None and load_recipe(image).root_base() == "debootstrap" else "busybox"
    except SpecError:
        return "busybox"


def load_recipe(name_or_path: str, _seen: tuple[str, ...] = ()) -> Recipe:
    """Read and validate a recipe and its parents; SpecError lists every problem with its path."""
    import yaml  # lazy: ~25 ms, only when a recipe is read

    path = find_recipe(name_or_path)
    if path is None:
        raise SpecError(f"NAME: no recipe {name_or_path!r}; use one of: {', '.join(recipe_names())} "
                        f"(files in {paths.data_dir('images')}) or a path to a .yaml file")
    label = path.name
    try:
        raw = path.read_bytes()
        if b"\0" in raw:
            raise ValueError("holds NUL bytes (a binary file)")
        text = raw.decode("utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).split(":")[0]
        raise SpecError(f"{label}: cannot read the recipe: {reason}; a recipe is UTF-8 YAML text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{label}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{label}: a recipe is a mapping of {', '.join(RECIPE_KEYS)}")
    errors = [f"{label}: {k}: unknown key; use one of {', '.join(RECIPE_KEYS)}"
              for k in data if k not in RECIPE_KEYS]
    base = data.get("base")
    parent: Recipe | None = None
    suite, variant = "", "minbase"
    if not isinstance(base, str) or not base:
        errors.append(f"{label}: base: missing; use busybox, debootstrap or a recipe name")
        base = ""
    elif base not in BUILTIN_BASES:
        if base == path.stem or base in _seen:
            errors.append(f"{label}: base: {base!r} is circular ({' -> '.join((*_seen, path.stem, base))})")
        elif find_recipe(base) is None or "/" in base:
            errors.append(f"{label}: base: {base!r} is no recipe; use busybox, debootstrap or one of: "
                          f"{', '.join(recipe_names())}")
        else:
            try:
                parent = load_recipe(base, (*_seen, path.stem))
            except SpecError as exc:
                errors += [f"{label}: base {base}: {e}" for e in exc.errors]
    boot = data.get("debootstrap")
    if base == "debootstrap":
        suite, variant = _debootstrap(label, boot, errors)
    elif boot is not None:
        errors.append(f"{label}: debootstrap: only with base: debootstrap")
    root = parent.root_base() if parent else base
    packages = _packages(label, data.get("packages"), errors)
    services = _strings(label, "services", data.get("services"), errors)
    if root == "busybox" and (packages or services):
        errors.append(f"{label}: packages/services: need a Debian base (debootstrap); busybox has no apt or systemd")
    commands = _strings(label, "commands", data.get("commands"), errors)
    readiness = data.get("readiness") or []
    if isinstance(readiness, str):
        readiness = ["sh", "-c", readiness]
    if not isinstance(readiness, list) or not all(isinstance(a, str) for a in readiness):
        errors.append(f"{label}: readiness: must be a command: a string (run by sh -c) or a list of strings")
        readiness = []
    props = data.get("properties") or {}
    if not isinstance(props, dict) or any(isinstance(v, (dict, list)) for v in props.values()):
        errors.append(f"{label}: properties: must be a mapping of names to plain values")
        props = {}
    files = _files(label, path.parent, data.get("files"), errors)
    if errors:
        raise SpecError(errors)
    if not readiness and parent is not None:
        readiness = list(parent.readiness)
    return Recipe(name=path.stem, source=path, base=base, text=text,
                  description=str(data.get("description") or ""), suite=suite, variant=variant,
                  packages=packages, files=tuple(files), commands=tuple(commands),
                  services=tuple(services), readiness=tuple(readiness),
                  properties={str(k): str(v) for k, v in props.items()}, parent=parent)


def _strings(label: str, key: str, value: Any, errors: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append(f"{label}: {key}: must be a list of strings")
        return []
    return list(value)


def _packages(label: str, value: Any, errors: list[str]) -> tuple[tuple[str, ...], ...]:
    """Names installed in one apt transaction; a nested list is a transaction of its own, in order
    (so an earlier group can satisfy a later one's dependency, e.g. php-fpm before mediawiki)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(f"{label}: packages: must be a list of package names (or of lists of them)")
        return ()
    groups: list[list[str]] = []
    loose: list[str] = []
    for i, item in enumerate(value):
        names = item if isinstance(item, list) else [item]
        for j, p in enumerate(names):
            where = f"packages[{i}]" + (f"[{j}]" if isinstance(item, list) else "")
            if not isinstance(p, str) or not PACKAGE_RE.match(p):
                errors.append(f"{label}: {where}: {p!r} is not a Debian package name")
        if isinstance(item, list):
            groups.append([str(p) for p in item])
        else:
            loose.append(str(item))
    return tuple(tuple(g) for g in ([loose] if loose else []) + groups if g)


def _debootstrap(label: str, boot: Any, errors: list[str]) -> tuple[str, str]:
    boot = boot or {}
    if not isinstance(boot, dict):
        errors.append(f"{label}: debootstrap: must be a mapping with suite and variant")
        return "", "minbase"
    errors += [f"{label}: debootstrap.{k}: unknown key; use {', '.join(DEBOOTSTRAP_KEYS)}"
               for k in boot if k not in DEBOOTSTRAP_KEYS]
    suite = str(boot.get("suite") or host_codename())
    variant = str(boot.get("variant") or "minbase")
    if not re.match(r"^[a-z][a-z0-9\-]*$", suite):
        errors.append(f"{label}: debootstrap.suite: {suite!r} is not a Debian suite name like bookworm")
    elif not any(s == suite for _, s in debian_sources(host_sources(), suite)):
        errors.append(f"{label}: debootstrap.suite: the host's apt sources have no entry for {suite!r}; "
                      "use a suite they list (images use the host's own package source)")
    if variant not in VARIANTS:
        errors.append(f"{label}: debootstrap.variant: {variant!r} is unknown; use one of {', '.join(VARIANTS)}")
    return suite, variant


def _files(label: str, folder: Path, items: Any, errors: list[str]) -> list[FileSpec]:
    if items is None:
        return []
    if not isinstance(items, list):
        errors.append(f"{label}: files: must be a list of mappings with path and content or source")
        return []
    out = []
    for i, f in enumerate(items):
        where = f"{label}: files[{i}]"
        if not isinstance(f, dict):
            errors.append(f"{where}: must be a mapping with path and content or source")
            continue
        errors += [f"{where}.{k}: unknown key; use {', '.join(FILE_KEYS)}" for k in f if k not in FILE_KEYS]
        if not str(f.get("path", "")).startswith("/"):
            errors.append(f"{where}.path: must be an absolute path")
        if ("content" in f) == ("source" in f):
            errors.append(f"{where}: give exactly one of content or source")
        content = str(f.get("content", ""))
        if "\0" in content:
            errors.append(f"{where}.content: holds a NUL character; only text can be placed")
        if "source" in f:
            content = _source_text(where, folder, f["source"], errors)
        mode = _mode(where, f, errors)
        owner = str(f.get("owner", ""))
        if owner and not OWNER_RE.match(owner):
            errors.append(f"{where}.owner: {owner!r} is not USER, USER:GROUP or UID:GID")
        out.append(FileSpec(str(f.get("path")), content, mode, owner))
    return out


def _source_text(where: str, folder: Path, source: Any, errors: list[str]) -> str:
    """The text of a file beside the recipe; anything outside its folder (after symlinks) is refused.

    A recipe is often copied from someone else: `source: /etc/shadow` or a symlink pointing out
    must not copy the building host's files into an image that is then exported and shared.
    """
    home = folder.resolve()
    raw = str(source)
    src = (folder / raw).resolve()
    if Path(raw).is_absolute() or not src.is_relative_to(home):
        errors.append(f"{where}.source: {raw!r} is outside the recipe's folder {home}; "
                      "use a file in that folder (symlinks are followed before the check)")
        return ""
    if not src.is_file():
        errors.append(f"{where}.source: {raw!r} does not exist in {home} (a path relative to the recipe)")
        return ""
    try:
        data = src.read_bytes()
    except OSError as exc:
        errors.append(f"{where}.source: {raw!r} cannot be read: {exc.strerror}")
        return ""
    if b"\0" in data:
        errors.append(f"{where}.source: {raw!r} holds NUL bytes (a binary file); only text files can be placed")
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(f"{where}.source: {raw!r} is not UTF-8 text (byte {exc.start}); "
                      "only text files can be placed")
        return ""


def _mode(where: str, f: dict[str, Any], errors: list[str]) -> int:
    """The file's permission mode; setuid/setgid/sticky bits only when the file says setuid: true."""
    raw = f.get("mode", "0644")
    allow_special = f.get("setuid", False)
    if not isinstance(allow_special, bool):
        errors.append(f"{where}.setuid: {allow_special!r} is not true or false")
        allow_special = False
    text = str(raw).strip()
    if isinstance(raw, bool) or not re.fullmatch(r"[0-7]{1,4}", text):
        errors.append(f"{where}.mode: {raw!r} is not {MODE_ACCEPTED}")
        return 0o644
    mode = int(text, 8)
    if mode & SPECIAL_BITS and not allow_special:
        errors.append(f"{where}.mode: {text} sets setuid/setgid/sticky bits ({mode & SPECIAL_BITS:04o}); "
                      "add setuid: true to this file if that is meant")
    return mode
