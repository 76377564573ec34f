"""The commit on SQLite, run straight on the pooled aiosqlite connection.

A commit is a handful of short statements (the instance row, the step records, ...) in one
transaction.  Sent through SQLAlchemy's ``AsyncConnection`` each one pays for a greenlet
hand-off, an execution context and a result object: measured on this kind of machine, a
two-statement transaction took 1.25 ms that way against 0.41 ms sent to the aiosqlite
connection directly, and the embedded default's throughput is that of its commits.

Here every statement is compiled once per set of columns by SQLAlchemy's SQLite dialect and
its values go through the column types' own bind processors (``TypeEngine.bind_processor``),
so the rows are stored exactly as SQLAlchemy stores them, and read back by the same code.
The transaction runs on a connection checked out of the engine's pool (public
``AsyncEngine.raw_connection``) with the driver's public ``execute`` / ``executemany`` /
``commit``: ``BEGIN`` (sqlite3's own, right before the first write, unless the connection is
in autocommit mode), the instance write first (it takes SQLite's write lock before anything
is read, and its row count is the version check), the child writes, ``COMMIT``.

The load of an instance, the read on every activation's path, runs the same way: one
``execute_fetchall`` call, its values through the columns' result processors.

A statement this cannot send as compiled (one that needs a value the rows do not carry, such
as a Python-side column default, or an expanding ``IN``) is not run here: ``prepare`` answers
None and the store uses its SQLAlchemy transaction.  Driver errors come back as SQLAlchemy's
exception classes (``DBAPIError.instance``), as on the SQLAlchemy path, so ``_errors``
translates them the same way; a connection whose state is unknown (an error below SQL, a
cancelled call) is invalidated, never handed out again.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, NoReturn, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

__all__ = ["Prepared", "SQLiteQuery", "SQLiteStatement", "SQLiteDriver", "compile_for_driver"]

Row = Mapping[str, Any]
# One write of a plan: a statement and its rows (one row, or an executemany batch).
Write = tuple[ClauseElement, Sequence[Row]]


class SQLiteStatement:
    """A statement compiled for the SQLite driver (``?`` placeholders) with its bind processors."""

    __slots__ = ("_binds", "sql")

    def __init__(self, sql: str, binds: Sequence[tuple[str, Callable[[Any], Any] | None]]) -> None:
        self.sql = sql
        self._binds = tuple(binds)

    def args(self, row: Row) -> tuple[Any, ...]:
        """The driver's parameters for ``row``, in placeholder order."""
        return tuple(row[name] if process is None else process(row[name]) for name, process in self._binds)


def compile_for_driver(statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> SQLiteStatement | None:
    """``statement`` for rows with ``keys``, or None when its compiled form needs more than they carry."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
    names = compiled.positiontup
    if names is None or "POSTCOMPILE" in compiled.string or not set(names) <= set(keys):
        return None
    binds = []
    for name in names:
        type_ = compiled.binds[name].type
        binds.append((name, type_.dialect_impl(dialect).bind_processor(dialect)))
    return SQLiteStatement(compiled.string, binds)


# The writes of one commit, ready for the driver: each statement with its rows' parameters.
Prepared = list[tuple[SQLiteStatement, list[tuple[Any, ...]]]]


class SQLiteQuery:
    """A ``SELECT`` compiled for the SQLite driver, with its columns' result processors: its
    rows come back as mappings by column key, the values SQLAlchemy would hand back."""

    __slots__ = ("_columns", "statement")

    def __init__(self, query: Select[Any], dialect: Dialect, keys: Sequence[str]) -> None:
        statement = compile_for_driver(query, dialect, keys)
        if statement is None:
            raise ValueError(f"the query needs parameters besides {list(keys)}")
        self.statement = statement
        self._columns = tuple(
            (str(column.key), column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in query.selected_columns
        )

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row of the driver's as a mapping by column key, its values converted."""
        return {
            key: value if process is None else process(value)
            for (key, process), value in zip(self._columns, row, strict=True)
        }


class SQLiteDriver:
    """Sends statements straight to the aiosqlite connections of ``engine``'s pool: a plan's
    writes as one transaction, single-row queries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._compiled: dict[tuple[int, tuple[str, ...]], SQLiteStatement | None] = {}

    async def fetch_one(self, query: SQLiteQuery, params: Row) -> dict[str, Any] | None:
        """The first row of ``query`` (one call into aiosqlite's thread), or None."""
        sql = query.statement.sql
        async with self._connection() as driver:
            try:
                rows = await driver.execute_fetchall(sql, query.statement.args(params))
            except (sqlite3.Error, ValueError) as error:
                _raise_translated(sql, error)
        return query.mapping(rows[0]) if rows else None

    def prepare(self, writes: Sequence[Write]) -> Prepared | None:
        """The writes with their driver parameters; None if one cannot be sent as compiled."""
        prepared: Prepared = []
        for statement, rows in writes:
            keys = tuple(rows[0])
            if any(tuple(row) != keys for row in rows):
                return None  # rows of different shapes: SQLAlchemy groups them
            cache_key = (id(statement), keys)
            if cache_key in self._compiled:
                compiled = self._compiled[cache_key]
            else:
                # The statements are the store's constants: their ids stay theirs.
                compiled = self._compiled[cache_key] = compile_for_driver(statement, self._engine.dialect, keys)
            if compiled is None:
                return None
            prepared.append((compiled, [compiled.args(row) for row in rows]))
        return prepared

    async def commit(self, prepared: Prepared) -> bool:
        """Run ``prepared`` in one transaction; False (nothing written) when the first write,
        the instance's, matched no row: a stale version, or an instance created already."""
        async with self._connection() as driver:
            return await self._transaction(driver, prepared)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """The aiosqlite connection of a connection checked out of the pool, given back after."""
        fairy = await self._engine.raw_connection()
        driver = fairy.driver_connection
        broken: BaseException | None = None
        try:
            yield driver
        except BaseException as error:
            broken = error
            raise
        finally:
            await _give_back(fairy, driver, broken)

    async def _transaction(self, driver: Any, prepared: Prepared) -> bool:
        (first, [first_args]), children = prepared[0], prepared[1:]
        sql = "BEGIN"
        try:
            if driver.in_transaction:
                # Never so from the pool (it rolls back on return); joining a stray
                # transaction would commit whatever it holds with this plan.
                await driver.rollback()
            if driver.isolation_level is None:
                # Autocommit mode; otherwise sqlite3 itself begins the transaction right
                # before the first write, in the same call (no call of its own).
                await driver.execute(sql)
            sql = first.sql
            cursor = await driver.execute(sql, first_args)
            if cursor.rowcount != 1:
                sql = "ROLLBACK"
                await driver.rollback()
                return False
            for statement, batch in children:
                sql = statement.sql
                if len(batch) == 1:
                    await driver.execute(sql, batch[0])
                else:
                    await driver.executemany(sql, batch)
            sql = "COMMIT"
            await driver.commit()
        except (sqlite3.Error, ValueError) as error:
            _raise_translated(sql, error)
        return True


async def _give_back(fairy: Any, driver: Any, broken: BaseException | None) -> None:
    """Return the connection to the pool; invalidate it when its state is unknown."""
    if isinstance(broken, sa_exc.DBAPIError) and not broken.connection_invalidated:
        # A statement failed: the connection itself is fine once rolled back (a rollback
        # that fails too leaves it broken: invalidated below).
        with contextlib.suppress(Exception):
            await driver.rollback()
            broken = None
    if broken is None:
        await greenlet_spawn(fairy.close)
    else:
        # Cancelled mid-call, lost, or not rolled back: what the connection holds is unknown.
        await greenlet_spawn(fairy.invalidate, broken if isinstance(broken, Exception) else None)


def _raise_translated(statement: str, error: sqlite3.Error | ValueError) -> NoReturn:
    """Raise the SQLAlchemy exception the SQLAlchemy path raises for a driver error
    (``IntegrityError``, ``OperationalError``, ...), from ``error``.

    aiosqlite reports a closed connection as a ``ValueError`` ("Connection closed", "no
    active connection"), SQLite a closed database as ``ProgrammingError``: both become an
    invalidated connection.  Another ``ValueError`` is raised as it is.
    """
    if isinstance(error, ValueError):
        if "connection" not in str(error).lower():
            raise error
        closed = sqlite3.OperationalError(str(error))
        raise sa_exc.OperationalError(statement, None, closed, connection_invalidated=True) from error
    invalidated = isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error).lower()
    wrapped = sa_exc.DBAPIError.instance(statement, None, error, sqlite3.Error, connection_invalidated=invalidated)
    raise wrapped from error
