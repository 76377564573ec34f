"""What an engine is made of, as far as metrics and health checks care.

The SQL store, the SAQ engine and the Redis stream bus live in optional extras.  An engine
built on one of them has already imported its module, so these look the classes up in
``sys.modules`` instead of importing them: a process without the extras never imports them,
and one with them pays nothing.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from flowstar.engine.core import Engine

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from flowstar.db.store import SQLAlchemyStore
    from flowstar.redis.stream_bus import RedisStreamEventBus
    from flowstar.saq.engine import SAQExecutionEngine

__all__ = ["core_engine", "redis_clients", "saq_engine", "sql_store", "stream_bus"]


def _instance_of(value: object, module: str, name: str) -> bool:
    """Whether ``value`` is an instance of ``module.name``, without importing ``module``."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(value, kind)


def core_engine(engine: Any) -> Engine:
    """The ``Engine`` itself: ``engine``, or the one a facade (``FlowEngine``) wraps.

    Raises:
        TypeError: neither is an ``Engine``.
    """
    if isinstance(engine, Engine):
        return engine
    inner = getattr(engine, "engine", None)
    if isinstance(inner, Engine):
        return inner
    raise TypeError(f"{type(engine).__name__} is not a flowstar engine")


def sql_store(engine: Engine) -> SQLAlchemyStore | None:
    """The engine's store when it is the SQL store."""
    store = engine.store
    return cast("SQLAlchemyStore", store) if _instance_of(store, "flowstar.db.store", "SQLAlchemyStore") else None


def saq_engine(engine: Engine) -> SAQExecutionEngine | None:
    """The engine as an ``SAQExecutionEngine``, if it is one."""
    return (
        cast("SAQExecutionEngine", engine)
        if _instance_of(engine, "flowstar.saq.engine", "SAQExecutionEngine")
        else None
    )


def stream_bus(engine: Engine) -> RedisStreamEventBus | None:
    """The Redis Stream bus the engine's events reach (through the outbox or directly)."""
    saq = saq_engine(engine)
    bus: object = saq.stream_bus if saq is not None else engine.event_bus
    if _instance_of(bus, "flowstar.redis.stream_bus", "RedisStreamEventBus"):
        return cast("RedisStreamEventBus", bus)
    return None


def redis_clients(engine: Engine) -> list[Redis]:
    """Every distinct Redis client the engine depends on (queue, leases, event stream)."""
    clients: list[Redis] = []
    saq = saq_engine(engine)
    if saq is not None:
        clients.append(saq.redis)
    bus = stream_bus(engine)
    if bus is not None and all(bus.redis is not c for c in clients):
        clients.append(bus.redis)
    return clients
