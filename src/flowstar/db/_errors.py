"""Driver errors, translated into flowstar's in one place.

In the spirit of advanced-alchemy's ``wrap_sqlalchemy_exception``: every entry point of
``SQLAlchemyStore`` runs inside ``translated(...)``, which turns

- a value the database refuses (SQLSTATE class 22, "data exception") into
  ``ContextSerializationError``: nothing was written;
- a database that cannot be reached or did not answer in time (a pool checkout timeout, a
  lost or refused connection, a statement or lock timeout, SQLite's busy timeout, an
  ``OSError`` or ``TimeoutError`` on the way) into ``StoreUnavailableError``, whose message
  says what failed, whether a write may have committed, and that retrying is safe;

and lets every other error through unchanged (an ``IntegrityError`` is a bug in a plan, not a
condition to paper over).  The asyncpg statements that bypass SQLAlchemy report asyncpg's
errors as SQLAlchemy's classes first (``as_dbapi_error``), so one vocabulary reaches here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from flowstar.model.errors import ContextSerializationError, StoreUnavailableError, WorkflowsError

__all__ = ["as_dbapi_error", "refused_data", "server_error", "translate", "translated", "translating", "unavailable"]

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATEs of a server that is going away, refusing connections, or gave up waiting:
# class 08 (connection exception), 53300 too many connections, 55P03 lock timeout, 57014
# statement timeout (query canceled), 57P01-57P03 shutdown / cannot connect now.
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_CODES = frozenset({"53300", "55P03", "57014", "57P01", "57P02", "57P03"})
# SQLSTATEs of a character the database cannot store (PostgreSQL's text holds no NUL).
_BAD_CHARACTER = frozenset({"22021", "22P05"})
# SQLAlchemy's asyncpg adapter prefixes the driver's message with its class; asyncpg names
# the statement's placeholder of a value it cannot encode.
_DRIVER_CLASS = re.compile(r"^<class '[\w.]+'>: ")
_QUERY_ARGUMENT = re.compile(r"invalid input for query argument \$\d+: ")
# sqlite3 reports its busy timeout running out as these.
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_TIMEOUT"})


def _sqlstate(error: BaseException | None) -> str | None:
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def _refusal(orig: BaseException | None) -> str:
    """Why the database refused a value, in words for whoever sent it (no driver classes or
    statement placeholders)."""
    if _sqlstate(orig) in _BAD_CHARACTER:
        return "text cannot contain the NUL character (\\u0000) in this database"
    lines = str(orig).splitlines()
    text = _DRIVER_CLASS.sub("", lines[0]) if lines else type(orig).__name__
    return _QUERY_ARGUMENT.sub("invalid value ", text)


def refused_data(error: BaseException) -> bool:
    """Whether the database refused a value the statement carried.

    asyncpg's SQLAlchemy adapter reports some of those (``UntranslatableCharacterError``)
    as a plain ``DBAPIError``, so the SQLSTATE decides.
    """
    if isinstance(error, sa_exc.DataError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    code = _sqlstate(error.orig)
    return code is not None and code.startswith("22")


def _unavailable_cause(error: BaseException | None) -> bool:
    if isinstance(error, TimeoutError | OSError):
        return True
    code = _sqlstate(error)
    if code is not None:
        return code.startswith(_UNAVAILABLE_CLASSES) or code in _UNAVAILABLE_CODES
    return getattr(error, "sqlite_errorname", None) in _SQLITE_BUSY


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or did not answer in time."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or _unavailable_cause(error.orig)
    return _unavailable_cause(error)


def translate(error: BaseException, action: str, *, write: bool) -> WorkflowsError | None:
    """flowstar's error for a driver error raised while trying to ``action``, or None."""
    if refused_data(error):
        orig = error.orig if isinstance(error, sa_exc.DBAPIError) else error
        return ContextSerializationError(f"the database refused a value: {_refusal(orig)}")
    if not unavailable(error):
        return None
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    outcome = (
        "the write may or may not have been committed; retrying is safe: a commit that did"
        " happen is recognised by the instance's version, and the reconciler settles the rest"
        if write
        else "nothing was changed; retrying is safe"
    )
    return StoreUnavailableError(
        f"the database could not {action} ({type(cause).__name__}: {cause or 'no answer in time'}); {outcome}"
    )


@contextmanager
def translated(action: str, *, write: bool = False) -> Iterator[None]:
    """Raise flowstar's error (``from`` the driver's) for what ``translate`` knows."""
    try:
        yield
    except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as error:
        found = translate(error, action, write=write)
        if found is None:
            raise
        raise found from error


def translating(
    action: str, *, write: bool = False
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """``translated`` around every call of a coroutine function."""

    def decorate(function: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with translated(action, write=write):
                return await function(*args, **kwargs)

        return wrapper

    return decorate


def server_error(error: BaseException) -> bool:
    """Whether asyncpg reports an error of the statement (its connection still usable)."""
    import asyncpg  # type: ignore[import-untyped]

    return isinstance(error, asyncpg.PostgresError) and not (_sqlstate(error) or "").startswith("08")


def as_dbapi_error(statement: str, params: Mapping[str, Any], error: Exception) -> sa_exc.DBAPIError:
    """An asyncpg error as the SQLAlchemy exception its SQLAlchemy adapter would raise."""
    import asyncpg

    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(statement, params, error)
    if isinstance(error, asyncpg.DataError):
        return sa_exc.DataError(statement, params, error)
    # Below SQL (connection lost, a protocol error): the connection is gone.
    return sa_exc.DBAPIError(statement, params, error, connection_invalidated=not server_error(error))
