"""Pure: remote names and addresses are checked before any network use; the key pair is private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lxctool.core.errors import NotFound, SpecError
from lxctool.lxd import remote
from lxctool.lxd.transport import split_url


def test_split_url_defaults_to_8443_and_wants_https() -> None:
    assert split_url("https://10.0.0.5") == ("10.0.0.5", 8443)
    assert split_url("https://127.0.0.1:9443") == ("127.0.0.1", 9443)
    with pytest.raises(ValueError):
        split_url("http://127.0.0.1:8443")


def test_bad_names_and_urls_are_refused_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCTOOL_CONFIG_DIR", str(tmp_path))
    with pytest.raises(SpecError) as exc:
        remote.check_new("9bad name", "ftp://x")
    assert [e.split(":")[0] for e in exc.value.errors] == ["NAME", "URL"]
    with pytest.raises(SpecError):
        remote.check_new("local", "https://127.0.0.1:8443")


def test_unknown_remote_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCTOOL_CONFIG_DIR", str(tmp_path))
    with pytest.raises(NotFound) as exc:
        remote.selected("nosuch")
    assert "'nosuch'" in exc.value.message and exc.value.exit_code == 2
    assert remote.selected(None) is None and remote.selected("local") is None


def test_key_pair_made_once_with_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCTOOL_CONFIG_DIR", str(tmp_path / "cfg"))
    crt, key = remote.client_keypair()
    first = Path(crt).read_bytes()
    for f in (crt, key):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "cfg").st_mode) == 0o700
    assert remote.client_keypair() == (crt, key) and Path(crt).read_bytes() == first
    assert len(remote.client_fingerprint()) == 64
