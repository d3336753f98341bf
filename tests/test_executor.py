"""The executor's own logic with handlers passed in (as stacks add kinds): order per target,
`after` dependencies, bounded parallelism, and undo of what a failed run created. No daemon."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from lxctool.apply.executor import apply
from lxctool.core.errors import LxctoolError
from lxctool.core.plan import Op


class Recorder:
    """Handlers for the custom kinds 'work' and 'make' that log start/end and track concurrency."""

    def __init__(self, fail: str | None = None) -> None:
        self.log: list[str] = []
        self.undone: list[str] = []
        self.running = 0
        self.most = 0
        self.fail = fail
        self.lock = threading.Lock()

    def work(self, ctx: Any, op: Op) -> str:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.log.append(f"start {op.target}")
        time.sleep(float(op.detail.get("s", 0.05)))
        with self.lock:
            self.running -= 1
            self.log.append(f"end {op.target}")
        if op.target == self.fail:
            raise LxctoolError(f"{op.target} failed")
        return op.target.upper()

    def make(self, ctx: Any, op: Op) -> None:
        ctx.on_failure(op.target, lambda exc: self.undone.append(op.target))
        if op.detail.get("settle"):
            ctx.settled(op.target)

    def handlers(self) -> dict[str, Any]:
        return {"work": self.work, "make": self.make}


def test_parallel_respects_after_and_the_bound() -> None:
    rec = Recorder()
    ops = [Op("work", "net", {"s": 0.1}), Op("work", "a", after=("net",)), Op("work", "b", after=("net",)),
           Op("work", "c", after=("net",)), Op("work", "web", after=("a", "b", "c"))]
    results = apply(None, ops, parallel=2, handlers=rec.handlers())
    assert [r for _, r in results] == ["NET", "A", "B", "C", "WEB"]
    assert rec.log.index("end net") < min(rec.log.index(f"start {t}") for t in "abc")
    assert rec.log.index("start web") > max(rec.log.index(f"end {t}") for t in "abc")
    assert rec.most == 2


def test_sequential_runs_in_list_order() -> None:
    rec = Recorder()
    apply(None, [Op("work", "x", {"s": 0}), Op("work", "y", {"s": 0})], handlers=rec.handlers())
    assert rec.log == ["start x", "end x", "start y", "end y"]


@pytest.mark.parametrize("parallel", [1, 3])
def test_failure_undoes_what_was_created_and_not_settled(parallel: int) -> None:
    rec = Recorder(fail="boom")
    ops = [Op("make", "kept", {"settle": True}), Op("make", "half"), Op("work", "boom", after=("half",)),
           Op("work", "never", after=("boom",))]
    with pytest.raises(LxctoolError, match="boom failed"):
        apply(None, ops, parallel=parallel, handlers=rec.handlers())
    assert rec.undone == ["half"]
    assert "start never" not in rec.log


def test_unknown_kind_is_refused_before_anything_runs() -> None:
    rec = Recorder()
    with pytest.raises(LxctoolError, match="no handler for op kind"):
        apply(None, [Op("work", "x"), Op("provision", "y")], handlers=rec.handlers())
    assert rec.log == []
