"""The dashboard's one sampler: a single asyncio task takes compare's samples (observe/measure
Sampler, observe/compare rows) at most once per interval and fans each one out to every
connected browser. Browsers never cause a sample, so the LXD requests per sample stay constant
however many watch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from lxctool.dashboard import inventory
from lxctool.lxd.client import Lxd
from lxctool.observe.compare import attribution_rows, rows
from lxctool.observe.measure import Sample, Sampler
from lxctool.stacks import model as m

MIN_INTERVAL_S = 1.0       # at most one sample per second, for everything
VERIFY_EVERY_S = 5.0
QUEUE_SIZE = 8             # a browser that falls this far behind drops its oldest updates


class RecordingSampler(Sampler):
    """compare's Sampler, keeping the instance list its one batched request returned."""

    last_instances: list[dict[str, Any]] = []

    def instances(self) -> list[dict[str, Any]]:
        """Every instance with its state (one request), kept for the table's stack/limit columns."""
        self.last_instances = super().instances()
        return self.last_instances


class Hub:
    """Holds the rolling window of samples and the subscribers' queues."""

    def __init__(self, lxd: Lxd, stacks: list[m.Stack] | None = None, interval: float = 1.0,
                 window: int = 300) -> None:
        self.sampler = RecordingSampler(lxd)
        self.interval = max(MIN_INTERVAL_S, interval)
        self.window: deque[list[dict[str, Any]]] = deque(maxlen=window)
        # the health worker gets its own connection: its exec requests never count in a sample's
        self.health = inventory.Health(stacks or [], lxd.clone())
        self._seen: tuple[dict[str, Any], dict[str, list[str]]] | None = None  # what the worker probes
        self.meta: dict[str, Any] = {"containers": {}, "services": [], "verify": {}, "attribution": []}
        self.requests_per_sample: deque[int] = deque(maxlen=3600)  # LXD requests of each recent sample
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._verify_at = 0.0
        self.error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        """What GET /api/samples returns: the window (each sample = compare's JSON rows) and the rest."""
        return {"interval_s": self.interval, "window": self.window.maxlen, "samples": list(self.window),
                "error": self.error, **self.meta}

    def latest(self) -> list[dict[str, Any]]:
        """The newest sample's rows (empty before the first)."""
        return self.window[-1] if self.window else []

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives every new sample message."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop sending to q."""
        self.subscribers.discard(q)

    def _update(self, prev: Sample, cur: Sample) -> dict[str, Any]:
        """Rows of cur against prev, the inventory beside them; runs in the sampler thread."""
        data = rows(prev, cur)
        insts = self.sampler.last_instances
        ctrs = inventory.containers(insts, self.health.stacks)
        ipv4 = {r["name"]: r["ipv4"] for r in data}
        self._seen = (ctrs, ipv4)
        meta = {"containers": ctrs, "services": self.health.services(ctrs),
                "attribution": attribution_rows(data[0]), "verify": self.meta["verify"]}
        if time.monotonic() - self._verify_at >= VERIFY_EVERY_S:
            self._verify_at = time.monotonic()
            meta["verify"] = inventory.verify_results(sorted(ctrs))
        return {"rows": data, **meta}

    async def run(self) -> None:
        """Sample forever (until cancelled), one sample per interval, and publish each."""
        worker = asyncio.create_task(self._health_worker()) if self.health.has_checks() else None
        try:
            await self._sample_forever()
        finally:
            if worker is not None:
                worker.cancel()

    async def _health_worker(self) -> None:
        """Run the -f stacks' health checks on the latest sample's containers, at most every HEALTH_EVERY_S."""
        while True:
            started = time.monotonic()
            seen = self._seen
            if seen is None:  # no sample yet: nothing known to probe
                await asyncio.sleep(0.2)
                continue
            try:
                await asyncio.to_thread(self.health.probe_round, *seen)
                self.health.failure = None
            except Exception as exc:  # noqa: BLE001 - a failed round shows on the page; the next one tries again
                self.health.probed = {}
                self.health.failure = f"health checks failed: {getattr(exc, 'message', None) or exc}"
            await asyncio.sleep(max(0.0, started + inventory.HEALTH_EVERY_S - time.monotonic()))

    async def _sample_forever(self) -> None:
        prev: Sample | None = None
        while True:
            started = time.monotonic()
            try:
                cur = await asyncio.to_thread(self.sampler.sample)
                if prev is not None:
                    message = await asyncio.to_thread(self._update, prev, cur)
                    self.requests_per_sample.append(cur.requests)
                    self._publish(message)
                prev, self.error = cur, None
            except Exception as exc:  # noqa: BLE001 - the page says what went wrong and sampling goes on
                self.error = f"sampling failed: {getattr(exc, 'message', None) or exc}"
                self._broadcast({"type": "error", "error": self.error})
            await asyncio.sleep(max(0.0, started + self.interval - time.monotonic()))

    def _publish(self, message: dict[str, Any]) -> None:
        self.window.append(message["rows"])
        self.meta = {k: v for k, v in message.items() if k != "rows"}
        self._broadcast({"type": "sample", **message})

    def _broadcast(self, message: dict[str, Any]) -> None:
        for q in list(self.subscribers):
            if q.full():  # a slow browser loses its oldest update, never stalls the sampler
                q.get_nowait()
            q.put_nowait(message)
