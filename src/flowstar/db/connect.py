"""Building async SQLAlchemy engines the way flowstar needs them.

Every database operation is bounded in time (``FLOWSTAR_DB_TIMEOUT``, see
docs/distributed.md, "Timeouts and faults"): a stalled server or a network partition makes a
call fail after the bound instead of waiting forever.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from flowstar.settings import check_timeout, database_timeout

__all__ = ["DEFAULT_DATABASE_URL", "create_database_engine", "timeout_options"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.flowstar/flowstar.db"

# SQLite's busy timeout without a bound: a day (the driver needs a finite number).
_SQLITE_UNBOUNDED = 86400.0


def _json_serializer(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_database_engine(
    url: str = DEFAULT_DATABASE_URL, *, timeout: float | None = None, **kwargs: Any
) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url`` with flowstar's settings.

    JSON columns use msgspec (several times faster than ``json``).  SQLite gets WAL mode, a
    busy timeout so that several processes can share the file, and foreign keys on; a SQLite
    file's directory is created if missing.  Every operation is bounded by ``timeout`` (see
    ``timeout_options``).

    Args:
        url: a SQLAlchemy async URL (``postgresql+asyncpg://...``, ``sqlite+aiosqlite://...``).
        timeout: seconds a connect, a wait for a pooled connection or one statement may
            take; None reads ``FLOWSTAR_DB_TIMEOUT`` (30 s by default); 0: no bound.
        **kwargs: passed to ``create_async_engine``; ``connect_args`` are merged with ours.

    Raises:
        ValidationError: ``timeout`` (or ``FLOWSTAR_DB_TIMEOUT``) is not a number >= 0.
    """
    bound = database_timeout() if timeout is None else timeout
    check_timeout("timeout", bound)
    parsed = make_url(url)
    options: dict[str, Any] = {"json_serializer": _json_serializer, "json_deserializer": msgspec.json.decode}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # One connection: SQLite allows one writer at a time anyway, and queueing on the
            # pool is cheaper than "database is locked" retries inside the driver.
            options.update(pool_size=1, max_overflow=0)
    else:
        # No pre-ping: it costs a round trip per checkout; stale connections are recycled instead.
        # The pool is at least as large as the usual number of activations in flight: overflow
        # connections are closed on return, and re-opening them (connect, type introspection,
        # statement preparation) halved throughput with 20 instances in flight.
        options.update(pool_size=20, max_overflow=10, pool_recycle=1800)
    _merge(options, timeout_options(parsed, bound, pooled=options.get("poolclass") is not StaticPool))
    _merge(options, kwargs)
    engine = create_async_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        busy_ms = round(1000 * (bound or _SQLITE_UNBOUNDED))
        event.listen(engine.sync_engine, "connect", lambda conn, _record: _sqlite_pragmas(conn, busy_ms))
    event.listen(engine.sync_engine, "handle_error", _discard_timed_out_connection)
    return engine


def timeout_options(url: URL, timeout: float, *, pooled: bool = True) -> dict[str, Any]:
    """``create_async_engine`` options that bound every operation on ``url`` by ``timeout``.

    - asyncpg: ``timeout`` (connecting, authentication included) and ``command_timeout``
      (every statement, on SQLAlchemy's path and on the raw connections the store keeps
      from the same pool) in ``connect_args``, and the server's ``statement_timeout``, so
      that PostgreSQL itself gives up a statement (and its locks) the client gave up on;
    - SQLite: the driver's busy timeout (waiting for another process's write lock);
    - every pool: ``pool_timeout``, the wait for a free connection.

    Other PostgreSQL drivers get the pool bound only.  ``timeout`` 0 returns no options:
    the drivers' own defaults apply (asyncpg: 60 s to connect, statements unbounded).
    """
    if timeout == 0:
        return {}
    options: dict[str, Any] = {"pool_timeout": timeout} if pooled else {}
    driver = url.get_driver_name()
    if url.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": timeout}
    elif url.get_backend_name() == "postgresql" and driver == "asyncpg":
        milliseconds = str(max(1, math.ceil(timeout * 1000)))
        options["connect_args"] = {
            "timeout": timeout,
            "command_timeout": timeout,
            "server_settings": {"statement_timeout": milliseconds},
        }
    return options


def _merge(options: dict[str, Any], extra: dict[str, Any]) -> None:
    """``options.update(extra)``, except that ``connect_args`` (and their ``server_settings``) merge."""
    for key, value in extra.items():
        if key == "connect_args" and isinstance(options.get(key), dict):
            merged = {**options[key], **value}
            ours, theirs = options[key].get("server_settings"), value.get("server_settings")
            if isinstance(ours, dict) and isinstance(theirs, dict):
                merged["server_settings"] = {**ours, **theirs}
            options[key] = merged
        else:
            options[key] = value


def _discard_timed_out_connection(context: ExceptionContext) -> None:
    """A statement that timed out leaves its connection in an unknown state: discard it.

    Without this SQLAlchemy would roll the connection back before pooling it again, one more
    round trip to a server that does not answer (doubling the time the caller waits).  Only
    that connection goes: the pool's others may be fine once the server answers again.
    """
    if not isinstance(context.original_exception, TimeoutError):
        return
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
    connection = context.connection
    if context.dialect.driver != "asyncpg" or connection is None or connection.invalidated:
        return
    driver = connection.connection.driver_connection
    if driver is not None:
        # SQLAlchemy closes an invalidated asyncpg connection politely, waiting up to 2 s for
        # the server; aborted here (asyncpg's public ``terminate``), it is closed at once.
        driver.terminate()


def _sqlite_pragmas(dbapi_connection: Any, busy_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
