"""Pure checks of the fast paths: worker clients keep their daemon, the readiness command is read right."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from lxctool.apply.executor import Context
from lxctool.apply.waits import READINESS_CONFIG_KEY, readiness_argv
from lxctool.lxd.client import Lxd
from lxctool.lxd.transport import HttpsTransport


def test_parallel_workers_talk_to_the_same_remote_daemon_and_project() -> None:
    remote = HttpsTransport("lab", "https://192.0.2.1:8443", None, None, None)  # never connected here
    main = Lxd(project="p1", transport=remote)
    main.target = "member2"
    ctx = Context(main, parallel=2)
    seen: list[Lxd] = []
    worker = threading.Thread(target=lambda: seen.append(ctx.lxd))
    worker.start()
    worker.join()
    clone = seen[0]
    assert clone is not main and clone.transport is remote and not clone.is_local
    assert (clone.project, clone.target) == ("p1", "member2")


def test_readiness_argv_reads_the_image_property_copied_into_the_config() -> None:
    argv = ["sh", "-c", "wget -q -O- http://127.0.0.1/ >/dev/null"]
    assert readiness_argv({"config": {READINESS_CONFIG_KEY: json.dumps(argv)}}) == argv
    assert readiness_argv({"config": {}}) == []
    assert readiness_argv({"config": {READINESS_CONFIG_KEY: "not json"}}) == []
    assert readiness_argv({"config": {READINESS_CONFIG_KEY: '"a string"'}}) == []


def test_a_document_that_passed_the_schema_skips_it_next_time(tmp_path: Path, monkeypatch: Any) -> None:
    from lxctool.stacks import load

    monkeypatch.setenv("LXCTOOL_CACHE_DIR", str(tmp_path))
    good = {"name": "s", "services": {"web": {"image": "busybox"}}}
    bad = {"name": "s", "services": {"web": {"image": "busybox", "colour": "red"}}}
    assert load.schema_errors(good) == []
    assert len(list((tmp_path / "stack-schema-ok").iterdir())) == 1
    monkeypatch.setattr(load, "_check_schema", lambda raw: ["checked again"])
    assert load.schema_errors(good) == []           # the recorded pass: no second check
    assert load.schema_errors(bad) == ["checked again"]  # any other document is checked
    monkeypatch.undo()
    monkeypatch.setenv("LXCTOOL_CACHE_DIR", str(tmp_path))
    assert load.schema_errors(bad)[0].startswith("services.web.colour: unknown key")
    assert len(list((tmp_path / "stack-schema-ok").iterdir())) == 1  # failures are never recorded
