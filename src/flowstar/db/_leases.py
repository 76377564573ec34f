"""Connections the hot statements keep borrowed from an engine's pool between statements.

Borrowing a connection per statement (``AsyncEngine.raw_connection()`` and returning it)
runs two greenlet hand-offs and the pool's checkout/checkin logic (reset, events, recycle
checks) for every statement: on the PostgreSQL hot path that costs as much CPU as the
statement itself.  Here the connections stay checked out of the engine's pool and are handed
from one statement to the next in plain asyncio (a list's ``pop``/``append``).

The budget does not change: leases are ordinary checkouts of the engine's pool, so the
process never holds more connections than ``pool_size + max_overflow``.  At most ``limit``
connections are kept (the pool size minus a tenth, at least one), so the other statements
(definitions, queries, the transactional commit) still find pooled connections; a hot
statement that finds no kept connection free borrows one from the pool for itself, as before.

One ``Leases`` per engine, shared by every store on it.  The kept connections belong to the
event loop they were opened in; a statement in another loop drops them.  They go back to the
pool after ``hold`` seconds (so its recycling and pre-ping apply; ``leases_for`` takes the
engine's ``pool_recycle`` to shorten it), when ``release_idle()`` is
called (``SQLAlchemyStore.close()``), and are closed when the engine is disposed.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

__all__ = ["Lease", "Leases", "leases_for"]

# Longest time a connection stays leased without passing through the pool again.
_HOLD_SECONDS = 300.0


class Lease:
    """One borrowed connection: the pool's handle and the asyncpg connection inside it."""

    __slots__ = ("driver", "fairy", "kept", "loop", "pool", "until")

    def __init__(self, fairy: PoolProxiedConnection, *, kept: bool, pool: Any, loop: Any, until: float) -> None:
        self.fairy = fairy
        self.driver: Any = fairy.driver_connection
        self.kept = kept
        self.pool = pool
        self.loop = loop
        self.until = until


class Leases:
    """The connections kept for one engine (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, limit: int, hold: float) -> None:
        self._engine = engine
        self.limit = limit
        self.hold = hold
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: list[Lease] = []
        # Kept connections out of the pool (free or in use), all of self._loop.
        self.kept = 0

    @property
    def free(self) -> int:
        """Kept connections waiting for a statement."""
        return len(self._free)

    async def acquire(self) -> Lease:
        """A connection for one statement: a kept one when free, else one from the pool."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._switch(loop)
        pool = self._engine.sync_engine.pool
        free = self._free
        while free:
            lease = free.pop()
            if lease.pool is pool and lease.until > time.monotonic() and not lease.driver.is_closed():
                return lease
            await self._give_back(lease, None)
        keep = self.kept < self.limit
        if keep:
            self.kept += 1
        try:
            fairy = await self._engine.raw_connection()
        except BaseException:
            if keep:
                self.kept -= 1
            raise
        return Lease(fairy, kept=keep, pool=pool, loop=loop, until=time.monotonic() + self.hold)

    async def release(self, lease: Lease, broken: BaseException | None = None) -> None:
        """Return ``lease`` after its statement; ``broken``: it failed below SQL (never reused)."""
        if (
            broken is None
            and lease.kept
            and lease.loop is self._loop
            and lease.pool is self._engine.sync_engine.pool
            and not lease.driver.is_closed()
        ):
            self._free.append(lease)
            return
        await self._give_back(lease, broken)

    async def release_idle(self) -> None:
        """Return the kept connections no statement is using to the engine's pool."""
        free, self._free = self._free, []
        for lease in free:
            await self._give_back(lease, None)

    async def _give_back(self, lease: Lease, broken: BaseException | None) -> None:
        if lease.kept and lease.loop is self._loop:
            self.kept -= 1
        if broken is not None:
            # Its state is unknown (lost, or cancelled mid-message): closed at once, without
            # waiting for the server, and never handed out again.
            lease.driver.terminate()
            error = broken if isinstance(broken, Exception) else None
            await greenlet_spawn(lease.fairy.invalidate, error)
        elif lease.driver.is_closed() or lease.pool is not self._engine.sync_engine.pool:
            # Closed by the server, or from a pool the engine has replaced (disposed): a
            # return would park it where nothing closes it.
            await greenlet_spawn(lease.fairy.invalidate)
        else:
            # In a greenlet: the pool may close the connection (an overflow one), which awaits.
            await greenlet_spawn(lease.fairy.close)

    def _switch(self, loop: asyncio.AbstractEventLoop) -> None:
        # Connections of another event loop cannot be used (nor closed politely) from this one:
        # invalidating them closes their sockets without a word to the server.
        stale, self._free = self._free, []
        self._loop, self.kept = loop, 0
        for lease in stale:
            lease.fairy.invalidate()

    def dispose(self) -> None:
        """The engine was disposed: close the kept connections that are free (in a greenlet)."""
        stale, self._free = self._free, []
        self.kept -= len(stale)
        if os.getpid() != self._pid:
            # A child process's copy of the parent's connections: leave them alone.
            _ABANDONED.extend(stale)
            self._pid = os.getpid()
            return
        for lease in stale:
            # Invalidated, not returned: the pool they came from has been replaced.
            lease.fairy.invalidate()


# Forked copies of a parent's connections: referenced forever so that no finalizer touches
# the sockets the parent still uses.
_ABANDONED: list[Lease] = []
_LEASES: weakref.WeakKeyDictionary[Engine, Leases] = weakref.WeakKeyDictionary()


def leases_for(engine: AsyncEngine, *, pool_recycle: float | None = None) -> Leases:
    """The engine's ``Leases``, created on first use.

    Only a ``QueuePool`` (the default for PostgreSQL) lends connections for keeps: with
    ``NullPool`` the user asked for a connection per use, and a static pool has one to share;
    there, and when the pool is too small to spare any, every statement borrows its own.

    Args:
        engine: the engine whose pool lends the connections.
        pool_recycle: the engine's ``pool_recycle`` (seconds), when it is shorter than the
            hold of five minutes: a kept connection then goes back to the pool that often,
            so that the pool recycles it.  (The pool does not say its setting publicly.)
            The shortest value any store of the engine gave wins.
    """
    sync = engine.sync_engine
    found = _LEASES.get(sync)
    if found is None:
        found = _LEASES[sync] = Leases(engine, _limit(sync.pool), _HOLD_SECONDS)
        event.listen(sync, "engine_disposed", _disposed)
    if pool_recycle is not None and pool_recycle > 0:
        found.hold = min(found.hold, float(pool_recycle))
    return found


def _limit(pool: Any) -> int:
    if not isinstance(pool, QueuePool):
        return 0
    size = pool.size()
    # A tenth of the pool (at least one connection) stays for the other statements.
    return max(0, size - max(1, size // 10))


def _disposed(engine: Engine) -> None:
    leases = _LEASES.get(engine)
    if leases is not None:
        leases.dispose()
