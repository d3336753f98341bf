"""Recipe sources stay in the recipe's folder; setuid bits need asking; binary files are refused.

A recipe copied from someone else must not copy this host's files into an image (which is then
exported and shared), nor make a setuid file nobody asked for. Each case is refused before any
build step with one line naming the file entry, and `image build` exits 2 with no image created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from lxctool.core.errors import SpecError
from lxctool.images.recipes import load_recipe


@pytest.fixture
def images_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "ok.txt").write_text("hello\n")
    (tmp_path / "secret.txt").write_text("host secret\n")
    monkeypatch.setenv("LXCTOOL_IMAGES_DIR", str(folder))
    return folder


def _recipe(folder: Path, name: str, file_entry: str) -> str:
    (folder / f"{name}.yaml").write_text(f"base: busybox\nreadiness: 'true'\nfiles:\n  - {file_entry}\n")
    return name


def _refusal(name: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_recipe(name)
    return info.value.errors


def test_sources_outside_the_folder_are_refused(images_dir: Path) -> None:
    os.symlink("/etc/hostname", images_dir / "link-out")
    os.symlink("../secret.txt", images_dir / "link-up")
    cases = {"abs": "/etc/passwd", "up": "../../etc/hostname", "sib": "../secret.txt",
             "lout": "link-out", "lup": "link-up"}
    for name, source in cases.items():
        _recipe(images_dir, name, f"{{path: /x, source: {source!r}}}")
        errors = _refusal(name)
        assert len(errors) == 1 and "files[0].source" in errors[0] and "outside the recipe's folder" in errors[0], errors
    os.symlink("ok.txt", images_dir / "link-in")  # a symlink that stays inside is fine
    _recipe(images_dir, "lin", "{path: /x, source: link-in}")
    assert load_recipe("lin").files[0].content == "hello\n"


def test_special_bits_need_setuid_true(images_dir: Path) -> None:
    for mode in ("4755", "2755", "1777", "6755"):
        _recipe(images_dir, "m", f"{{path: /x, content: a, mode: '{mode}'}}")
        assert "setuid: true" in _refusal("m")[0]
    _recipe(images_dir, "big", "{path: /x, content: a, mode: '177777'}")
    assert "is not an octal mode 0000-0777" in _refusal("big")[0]
    _recipe(images_dir, "asked", "{path: /x, content: a, mode: '4755', setuid: true}")
    assert load_recipe("asked").files[0].mode == 0o4755
    _recipe(images_dir, "plain", "{path: /x, content: a, mode: '0755'}")
    assert load_recipe("plain").files[0].mode == 0o755


def test_binary_sources_and_recipes_are_clean_errors(images_dir: Path) -> None:
    (images_dir / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02")
    (images_dir / "latin.txt").write_bytes(b"caf\xe9\n")
    _recipe(images_dir, "bin", "{path: /x, source: blob.bin}")
    assert "holds NUL bytes" in _refusal("bin")[0]
    _recipe(images_dir, "lat", "{path: /x, source: latin.txt}")
    assert "not UTF-8 text" in _refusal("lat")[0]
    _recipe(images_dir, "nul", '{path: /x, content: "a\\0b"}')
    assert "NUL character" in _refusal("nul")[0]
    (images_dir / "raw.yaml").write_bytes(b"base: busybox\x00\xff")
    assert "cannot read the recipe" in _refusal("raw")[0]


@pytest.mark.integration
def test_image_build_refuses_before_building(lxd: Any, images_dir: Path) -> None:
    _recipe(images_dir, "steal", "{path: /etc/x, source: ../../../../../../etc/passwd}")
    _recipe(images_dir, "suid", "{path: /bin/x, content: a, mode: '4755'}")
    (images_dir / "blob.bin").write_bytes(b"\x00" * 10)
    _recipe(images_dir, "blob", "{path: /x, source: blob.bin}")
    for name in ("steal", "suid", "blob"):
        proc = run_cli("image", "build", name, env={"LXCTOOL_IMAGES_DIR": str(images_dir)})
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert len(lines) == 1 and "files[0]" in lines[0], proc.stderr
        assert lxd.image_alias(name) is None
    built = {(i.get("properties") or {}).get("lxctool.recipe") for i in lxd.images()}
    assert not built & {"steal", "suid", "blob"}  # nothing imported (other runs may build meanwhile)
