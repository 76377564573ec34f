"""Readiness: can this process do its work?  The database and Redis it depends on answer.

Liveness needs no check (a process that answers is alive).  Readiness makes one round trip
to each server the engine uses: ``SELECT 1`` on the SQL store, ``PING`` on each Redis client
(the SAQ queue's, the event stream's).  Checks run concurrently, each within a timeout, so a
stalled server makes the process unready, never a hanging or failing request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from flowstar.engine.core import Engine
from flowstar.metrics.parts import redis_clients, sql_store

__all__ = ["Check", "Readiness", "describe_failure", "readiness"]

# Longest error text a check reports (the exception's type and message).
_ERROR_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's answer: ``ok``, or the ``error`` it failed with."""

    name: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    """Every check of one readiness request."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether every check passed (no checks at all: ready)."""
        return all(c.ok for c in self.checks)

    @property
    def status_code(self) -> int:
        """200 when ready, 503 (unavailable, try again later) when not."""
        return 200 if self.ok else 503

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"status": "ready" | "unavailable", "checks": {name: {...}}}``."""
        checks: dict[str, Any] = {}
        for check in self.checks:
            checks[check.name] = {"ok": True} if check.ok else {"ok": False, "error": check.error}
        return {"status": "ready" if self.ok else "unavailable", "checks": checks}

    @classmethod
    def failed(cls, name: str, exc: BaseException) -> Readiness:
        """Not ready: ``name`` failed with ``exc`` (an engine that could not be built, say)."""
        return cls((Check(name, False, describe_failure(exc)),))


def describe_failure(exc: BaseException) -> str:
    """The exception's type and message, shortened."""
    if isinstance(exc, TimeoutError):
        return "TimeoutError: no answer in time"
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 3] + "..."


async def readiness(engine: Engine, *, within: float = 3.0) -> Readiness:
    """Check the servers ``engine`` depends on, each within ``within`` seconds: ``database``
    (the SQL store) and ``redis``."""
    checks: dict[str, Callable[[], Awaitable[Any]]] = {}
    sql = sql_store(engine)
    if sql is not None:
        from flowstar.metrics._sql import ping

        checks["database"] = lambda: ping(sql)
    clients = redis_clients(engine)
    if clients:
        checks["redis"] = lambda: asyncio.gather(*(client.ping() for client in clients))
    answers = await asyncio.gather(*(_check(name, call, within) for name, call in checks.items()))
    return Readiness(tuple(answers))


async def _check(name: str, call: Callable[[], Awaitable[Any]], within: float) -> Check:
    try:
        await asyncio.wait_for(call(), within)
    except Exception as exc:
        return Check(name, False, describe_failure(exc))
    return Check(name, True)
