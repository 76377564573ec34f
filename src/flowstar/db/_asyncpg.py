"""The hot statements on PostgreSQL, run straight on a pooled asyncpg connection.

A step's commit and the load of an instance are one statement each; SQLAlchemy's
``AsyncConnection`` around them (greenlet hand-offs, isolation-level switching, result
wrapping) costs about twice the CPU of the statement itself.  Here the statement is compiled
once by SQLAlchemy's asyncpg dialect and runs on a connection of the engine's pool kept
between statements (``_leases``: no pool checkout per statement), outside any transaction,
which makes it autocommit: one round trip.  asyncpg keeps the prepared statement per
connection.

Errors come back as SQLAlchemy's exception classes (``IntegrityError``, ``DataError``,
``DBAPIError``) with the asyncpg error as ``orig``, as on the SQLAlchemy path
(``_errors.as_dbapi_error``); a connection that failed below the SQL level is closed and
invalidated instead of being used again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from flowstar.db._errors import as_dbapi_error, server_error
from flowstar.db._leases import Leases

__all__ = ["RawStatement"]


class RawStatement:
    """A statement compiled once for asyncpg (``$n`` placeholders) and run on a raw connection."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.names = list(compiled.positiontup or [])

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetchval(self, leases: Leases, params: Mapping[str, Any]) -> Any:
        """The first column of the first row."""
        return await self._run(leases, "fetchval", params)

    async def fetchrow(self, leases: Leases, params: Mapping[str, Any]) -> Any:
        """The first row (an ``asyncpg.Record``, a mapping by column name), or None."""
        return await self._run(leases, "fetchrow", params)

    async def _run(self, leases: Leases, method: str, params: Mapping[str, Any]) -> Any:
        lease = await leases.acquire()
        broken: BaseException | None = None
        try:
            return await getattr(lease.driver, method)(self.sql, *self._args(params))
        except Exception as error:
            if not server_error(error):
                # Below SQL (connection lost, a protocol error): its state is unknown.
                broken = error
            raise as_dbapi_error(self.sql, params, error) from error
        except BaseException as error:
            # Cancelled mid-message: the connection must not be reused either.
            broken = error
            raise
        finally:
            await leases.release(lease, broken)
