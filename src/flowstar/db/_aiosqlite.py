"""SQLite: a whole commit, or the load of an instance, as ONE call into aiosqlite's thread.

aiosqlite runs every sqlite3 call on a worker thread of its own; each call is a hand-off
(queue, thread wake-up, future, event-loop wake-up), and SQLAlchemy's adapter makes several
per statement (cursor, execute, fetch, close) plus ``COMMIT`` and the pool's ``ROLLBACK`` on
return.  Here a plain function runs on the sqlite3 connection inside that thread and does
the whole unit of work: ``BEGIN IMMEDIATE``, the statements (prepared once, ``executemany``
for batches), the version check and ``COMMIT`` (or ``ROLLBACK``), so a commit is one hop.

Statements are SQLAlchemy Core statements compiled once for the engine's SQLite dialect
(``?`` placeholders), and every value goes through the bind processors of its column's type
(advanced-alchemy's ``GUID`` as 16 bytes, ``DateTimeUTC`` as UTC text, JSON through the
engine's serializer), so rows are stored exactly as through SQLAlchemy; rows read back go
through the result processors.

The connection is borrowed from the engine's pool (``raw_connection()``, so it queues behind
the engine's other work) and handed back without the pool's reset ``ROLLBACK`` (another
hop): the function always ends the transaction it began.  Checkout, the hop and checkin run
in one greenlet, as SQLAlchemy's own execution does.  Errors come back as SQLAlchemy's exception classes
(``IntegrityError``, ``DataError``, ``OperationalError``, ...) with the sqlite3 error as
``orig``; a connection that failed to roll back is invalidated instead of reused.

This relies on ``aiosqlite.Connection._execute(fn, *args)`` (the method every aiosqlite call
goes through; private, see ``supported``) and ``Connection._conn``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only, greenlet_spawn

__all__ = ["SqliteRunner", "Write", "supported"]

Processor = Callable[[Any], Any] | None
Args = list[Any]

# Only used when the connection is already inside a transaction (a connection shared by
# ``StaticPool``, e.g. ``:memory:``): the commit then nests instead of taking the other's.
_SAVEPOINT = "flowstar_commit"


def supported() -> bool:
    """Whether the installed aiosqlite has the one entry point the fast path needs."""
    try:
        from aiosqlite import Connection
    except ImportError:  # pragma: no cover - the dialect needs it
        return False
    return callable(getattr(Connection, "_execute", None)) and hasattr(Connection, "_conn")


class Write(NamedTuple):
    """One statement of a transaction: its SQL, its rows (one per execution) and whether it
    must change exactly one row for the transaction to commit (the version check)."""

    sql: str
    rows: list[Args]
    guarded: bool = False


class _Compiled:
    """A statement compiled for SQLite, with its parameter names and bind processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str] | None) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys) if keys else None))
        self.sql = compiled.string
        names = list(compiled.positiontup or [])
        if keys is not None and (missing := set(names) - set(keys)):
            # SQLAlchemy would fill these from Python-side defaults; rows here carry every column.
            raise ValueError(f"rows for {self.sql.split('(', 1)[0]!r} lack {sorted(missing)}")
        self.binds = [(name, _bind_processor(compiled.binds[name].type, dialect)) for name in names]

    def args(self, params: Mapping[str, Any]) -> Args:
        # (A list comprehension: sqlite3 takes any sequence, and building a tuple from a
        # generator costs about 40% more, on every row of every commit.)
        return [params[name] if process is None else process(params[name]) for name, process in self.binds]


class _Query:
    """A ``SELECT`` compiled for SQLite, with its result columns' processors."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        self.statement = _Compiled(statement, dialect, None)
        columns = list(statement.selected_columns)
        self.keys = [str(column.key) for column in columns]
        self.processors = [_result_processor(column.type, dialect) for column in columns]

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            key: value if process is None or value is None else process(value)
            for key, process, value in zip(self.keys, self.processors, row, strict=True)
        }


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    # The processor SQLAlchemy itself applies (TypeDecorator first, then the dialect's type).
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


class _Failed(Exception):
    """Raised in the worker thread: which statement failed, and whether the rollback did too."""

    def __init__(self, sql: str, args: Any, error: BaseException, broken: bool) -> None:
        super().__init__(sql)
        self.sql = sql
        self.args_ = args
        self.error = error
        self.broken = broken


def _end(cursor: sqlite3.Cursor, nested: bool, *, commit: bool) -> None:
    if nested:
        if not commit:
            cursor.execute(f"ROLLBACK TO {_SAVEPOINT}")
        cursor.execute(f"RELEASE {_SAVEPOINT}")
    else:
        # Explicit SQL: ``Connection.commit()`` does nothing in sqlite3's autocommit mode.
        cursor.execute("COMMIT" if commit else "ROLLBACK")


def _rollback(cursor: sqlite3.Cursor, nested: bool) -> bool:
    """Undo what this commit began; False when the connection is left in an unknown state."""
    connection = cursor.connection
    try:
        if nested or connection.in_transaction:
            # (SQLite itself rolls back on some errors, such as a full disk: then nothing is left.)
            _end(cursor, nested, commit=False)
    except BaseException:
        return False
    return connection.in_transaction == nested


def _transaction(connection: sqlite3.Connection, writes: Sequence[Write]) -> bool:
    """In aiosqlite's thread: the whole transaction.  False (nothing written) when a guarded
    statement changed no row."""
    cursor = connection.cursor()
    nested = connection.in_transaction
    begun = False
    sql = f"SAVEPOINT {_SAVEPOINT}" if nested else "BEGIN IMMEDIATE"
    args: list[Args] | None = None
    try:
        # IMMEDIATE takes the write lock up front, waiting out the busy timeout.  A deferred
        # transaction would start on a read snapshot and, in WAL mode, fail at once
        # (SQLITE_BUSY_SNAPSHOT, no waiting) if another connection committed before its write.
        cursor.execute(sql)
        begun = True
        for sql, args, guarded in writes:
            if len(args) == 1:
                cursor.execute(sql, args[0])
            else:
                cursor.executemany(sql, args)
            if guarded and cursor.rowcount != 1:
                _end(cursor, nested, commit=False)
                return False
        sql, args = "COMMIT", None
        _end(cursor, nested, commit=True)
        return True
    except BaseException as error:
        broken = begun and not _rollback(cursor, nested)
        raise _Failed(sql, args, error, broken) from error
    finally:
        cursor.close()


def _fetch_one(connection: sqlite3.Connection, sql: str, args: Args) -> tuple[Any, ...] | None:
    """In aiosqlite's thread: the first row, as a tuple whatever the connection's row factory."""
    cursor = connection.cursor()
    try:
        cursor.row_factory = None
        row: tuple[Any, ...] | None = cursor.execute(sql, args).fetchone()
        return row
    except BaseException as error:
        # A read outside a transaction leaves nothing to undo.
        raise _Failed(sql, args, error, broken=False) from error
    finally:
        cursor.close()


class SqliteRunner:
    """Runs prepared transactions and single-row reads on an aiosqlite engine, one hop each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect
        self._compiled: dict[tuple[ClauseElement, tuple[str, ...] | None], _Compiled] = {}
        self._queries: dict[ClauseElement, _Query] = {}

    def write(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]], *, guarded: bool = False) -> Write:
        """``statement`` with ``rows`` (SQLAlchemy-style parameter dicts), converted for sqlite3."""
        # An INSERT without values lists the columns its rows carry; other statements name
        # their own parameters.
        keys = tuple(rows[0]) if isinstance(statement, Insert) else None
        compiled = self._compiled.get((statement, keys))
        if compiled is None:
            compiled = self._compiled[(statement, keys)] = _Compiled(statement, self._dialect, keys)
        try:
            converted = [compiled.args(row) for row in rows]
        except Exception as error:
            # As SQLAlchemy reports a value its type cannot bind.
            raise sa_exc.StatementError(str(error), compiled.sql, rows, error) from error
        return Write(compiled.sql, converted, guarded)

    async def transaction(self, writes: Sequence[Write]) -> bool:
        """Run ``writes`` in one transaction; False (and nothing written) if a guarded one
        changed no row."""
        return cast(bool, await self._run(_transaction, writes))

    async def fetch_one(self, statement: Select[Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row of ``statement`` by column key, values converted as SQLAlchemy does."""
        query = self._queries.get(statement)
        if query is None:
            query = self._queries[statement] = _Query(statement, self._dialect)
        compiled = query.statement
        row = await self._run(_fetch_one, compiled.sql, compiled.args(params))
        return None if row is None else query.mapping(row)

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        # One greenlet for the checkout, the hop and the checkin (the pool's code is
        # synchronous and may await inside, e.g. to close a connection).
        return await greenlet_spawn(self._borrow_and_run, function, args)

    def _borrow_and_run(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        fairy = self.engine.sync_engine.raw_connection()
        clean = False  # whether the connection is known to be outside any transaction of ours
        try:
            driver = fairy.driver_connection
            assert driver is not None
            try:
                result = await_only(driver._execute(function, driver._conn, *args))
            except _Failed as failed:
                orig = failed.error
                if failed.broken:
                    fairy.invalidate(orig if isinstance(orig, Exception) else None)
                clean = not failed.broken
                if isinstance(orig, sqlite3.Error):
                    raise sa_exc.DBAPIError.instance(
                        failed.sql,
                        failed.args_,
                        orig,
                        sqlite3.Error,
                        connection_invalidated=failed.broken,
                        dialect=self._dialect,
                    ) from orig
                raise orig from None
            except ValueError as error:
                # aiosqlite's connection is closed ("no active connection", "Connection closed").
                fairy.invalidate(error)
                raise sa_exc.DBAPIError(None, None, error, connection_invalidated=True) from error
            clean = True
            return result
        finally:
            _release(fairy, clean)


def _release(fairy: Any, clean: bool) -> None:
    """Hand the connection back to the pool."""
    # The function ended the transaction it began (or left an outer one as it found it), so
    # the pool's rollback-on-return would only be one more hop into the thread.  After a
    # cancellation the function may still be queued; aiosqlite runs it before anything the
    # pool's reset sends, so that reset merely comes late.
    close_special = getattr(fairy, "_close_special", None)
    if clean and close_special is not None:
        close_special(transaction_reset=True)
    else:
        fairy.close()
