"""The one executor: apply a list of ops (core/plan.py) in order, or in parallel along `after`.

One handler per OpKind (handlers.py); callers may pass more (stacks add their own kinds).
Progress goes to stderr through report.progress. When an op fails, what this run created and
did not get running is removed again (a half-created container, a bridge without its rule),
and the failure is raised.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from lxctool.apply.handlers import HANDLERS
from lxctool.core.errors import LxctoolError, LxdError
from lxctool.core.plan import Op, OpKind, kind_name

if TYPE_CHECKING:
    from concurrent.futures import Future

Handler = Callable[["Context", Op], Any]
Undo = Callable[[BaseException], None]


class Context:
    """What a handler gets: the LXD client (one per worker thread), results so far, an undo list."""

    def __init__(self, lxd: Any, parallel: int) -> None:
        self._main = lxd
        self._parallel = parallel > 1
        self._local = threading.local()
        self._lock = threading.Lock()
        self._undo: dict[str, Undo] = {}
        self.results: dict[str, Any] = {}     # target -> result of its latest op
        self.created: set[str] = set()        # targets this run created

    @property
    def lxd(self) -> Any:
        """The client for this thread (one connection cannot carry two requests at once)."""
        if not self._parallel:
            return self._main
        client = getattr(self._local, "lxd", None)
        if client is None:
            clone = getattr(self._main, "clone", None)
            client = clone() if clone else type(self._main)(self._main.socket_path, project=self._main.project)
            self._local.lxd = client
        return client

    def on_failure(self, target: str, undo: Undo) -> None:
        """Remember how to remove what target's op created, should a later op fail."""
        with self._lock:
            self._undo[target] = undo
            self.created.add(target)

    def settled(self, target: str) -> None:
        """What target created is meant to stay now (e.g. the container runs): no undo."""
        with self._lock:
            self._undo.pop(target, None)

    def rollback(self, exc: BaseException) -> None:
        """Undo, newest first, what this run created and did not settle."""
        with self._lock:
            undo = list(self._undo.items())[::-1]
            self._undo.clear()
        for _target, fn in undo:
            fn(exc)


def _dependencies(ops: list[Op]) -> list[set[int]]:
    """For each op, the earlier ops it waits for: same target, or a target named in `after`."""
    deps: list[set[int]] = []
    for j, op in enumerate(ops):
        deps.append({i for i in range(j) if ops[i].target == op.target or ops[i].target in op.after})
    return deps


def _handler_table(extra: Mapping[OpKind | str, Handler] | None) -> dict[str, Handler]:
    table = {kind_name(k): h for k, h in HANDLERS.items()}
    table.update({kind_name(k): h for k, h in (extra or {}).items()})
    return table


def apply(lxd: Any, ops: list[Op], *, parallel: int = 1,
          handlers: Mapping[OpKind | str, Handler] | None = None) -> list[tuple[Op, Any]]:
    """Apply ops (at most `parallel` at once, respecting order per target and `after`); return (op, result)."""
    table = _handler_table(handlers)
    unknown = sorted({kind_name(op.kind) for op in ops} - set(table))
    if unknown:
        raise LxctoolError(f"no handler for op kind(s) {', '.join(unknown)}")
    ctx = Context(lxd, parallel)
    results: list[Any] = [None] * len(ops)
    try:
        if parallel <= 1:
            for i, op in enumerate(ops):
                results[i] = _run(ctx, table, op)
        else:
            _run_parallel(ctx, table, ops, parallel, results)
    except BaseException as exc:
        ctx.rollback(exc)
        raise
    return list(zip(ops, results))


def _run(ctx: Context, table: dict[str, Handler], op: Op) -> Any:
    result = table[kind_name(op.kind)](ctx, op)
    ctx.results[op.target] = result
    return result


def _run_parallel(ctx: Context, table: dict[str, Handler], ops: list[Op], parallel: int,
                  results: list[Any]) -> None:
    """Start each op once the ops it depends on are done; stop starting new ones after a failure."""
    # lazy: concurrent.futures pulls in logging and queue (5-10 ms) that a one-container launch never needs
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    deps = _dependencies(ops)
    pending = list(range(len(ops)))
    done: set[int] = set()
    running: dict[Future[Any], int] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while True:
            if failure is None:
                for i in [i for i in pending if deps[i] <= done][:parallel - len(running)]:
                    pending.remove(i)
                    running[pool.submit(_run, ctx, table, ops[i])] = i
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                try:
                    results[i] = fut.result()
                    done.add(i)
                except BaseException as exc:  # noqa: BLE001 - re-raised once the others finish
                    failure = failure or exc
    if failure is not None:
        raise failure
    if pending:
        raise LxdError(f"{len(pending)} op(s) never became ready: {', '.join(ops[i].describe() for i in pending)}")
