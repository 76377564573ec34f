"""The outbox relay: appends committed events to the Redis Stream, then deletes them.

Events are written to ``workflow_outbox`` in the transaction that produced them, so an event
exists if and only if its change was committed.  The relay publishes them in commit order; a
process that dies between publishing and deleting leaves rows that the next relay publishes
again, so the stream delivers at least once (consumers see ``entry id``s and should be
idempotent).  One relay at a time drains the outbox, under a Redis lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from redis.asyncio import Redis

from flowstar.engine.ports import Outbox
from flowstar.redis._cancel import raise_if_cancel_requested
from flowstar.redis.stream_bus import RedisStreamEventBus

__all__ = ["OutboxRelay"]

log = structlog.get_logger("flowstar.relay")


class OutboxRelay:
    """Drains the outbox into a ``RedisStreamEventBus``.

    Args:
        store: where committed events wait (an ``Outbox``: the SQL store with ``outbox=True``).
        bus: where events go.
        redis: for the drain lock.
        idle_interval: seconds between polls when no local commit woke the relay.
        batch: events per round trip.
        coalesce: seconds a wake-up waits before draining, so that the commits of a busy
            moment share one drain.  Draining after every commit adds a SELECT, a DELETE
            transaction (with its own WAL flush) and three Redis calls to every step, racing
            the next step's commit: with it, the light-load step-to-step median was ~2.5x
            longer (``benchmarks/bench_saq.py``).  Events reach the stream this much later.
    """

    def __init__(
        self,
        store: Outbox,
        bus: RedisStreamEventBus,
        redis: Redis,
        *,
        idle_interval: float = 0.5,
        batch: int = 500,
        lock_key: str = "flowstar:relay-lock",
        coalesce: float = 0.05,
    ) -> None:
        self.store = store
        self.bus = bus
        self.redis = redis
        self.idle_interval = idle_interval
        self.batch = batch
        self.lock_key = lock_key
        self.coalesce = coalesce
        self._owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """A commit with events happened in this process: drain soon."""
        self._wake.set()

    async def drain(self) -> int:
        """Publish and delete everything in the outbox; returns the number published."""
        if not await self.redis.set(self.lock_key, self._owner, nx=True, px=30_000):
            return 0
        total = 0
        try:
            while True:
                rows = await self.store.take_outbox(self.batch)
                if not rows:
                    return total
                await self.bus.publish(event for _id, event in rows)
                await self.store.delete_outbox([row_id for row_id, _e in rows])
                total += len(rows)
                self.published += len(rows)
                if len(rows) < self.batch:
                    # Drained; later commits wake the relay again (no empty SELECT per drain).
                    return total
                await self.redis.pexpire(self.lock_key, 30_000)
        finally:
            if await self.redis.get(self.lock_key) == self._owner.encode():
                await self.redis.delete(self.lock_key)

    async def run(self) -> None:
        """Drain on every wake-up, and every ``idle_interval`` seconds, until cancelled."""
        while True:
            raise_if_cancel_requested()
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.idle_interval)
                woken = True
            if woken and self.coalesce > 0:
                await asyncio.sleep(self.coalesce)
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; will retry")
