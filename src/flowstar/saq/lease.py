"""Activation leases: one executor per activation at a time, across every worker process.

SAQ's sweep can start a second run of a job whose first run is still going (saq issue #277),
and a duplicated enqueue after a Redis restart can deliver an activation twice.  Before a
worker runs a step body it takes a lease in Redis; a delivery that finds the lease held
exits without running anything.  The lease expires on its own if its holder dies.
"""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

__all__ = ["Lease", "lease_key"]

_SCRIPT = (Path(__file__).with_name("lease.lua")).read_text()


def lease_key(key_prefix: str, token_id: str) -> str:
    """The Redis key of an activation's lease."""
    return f"{key_prefix}lease:{token_id}"


class Lease:
    """A Redis lease on one activation.

    Args:
        redis: the client.
        key: the lease key (one per activation).
        owner: a value unique to this holder (worker id and job attempt).
        ttl_ms: the lease lasts this long unless extended.
    """

    def __init__(self, redis: Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._script = redis.register_script(_SCRIPT)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    async def extend(self) -> bool:
        """Push the expiry back by ``ttl_ms``; False if the lease was lost."""
        return bool(await self._script(keys=[self.key], args=[self.owner, self.ttl_ms, "extend"]))

    async def release(self) -> bool:
        """Give the lease up (only if still ours)."""
        return bool(await self._script(keys=[self.key], args=[self.owner, self.ttl_ms, "release"]))
