"""Settings, engines and error reporting shared by the commands.

Which engine a command gets follows the settings: reads need nothing but the database;
writes need somewhere to run the steps they activate.  With ``FLOWSTAR_REDIS_URL`` set the
deployment runs SAQ workers, so a write commits and hands its activations to them (the SAQ
engine of ``build_engine``, with no worker, reconciler or relay loop in this process);
without it the command is the process that runs them, with a ``PersistentExecutionEngine``
on the URL, until the instance waits or ends.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import typer

from flowstar.cli._output import fail
from flowstar.engine.core import Engine
from flowstar.logs import configure_logging
from flowstar.model.errors import StoreUnavailableError, WorkflowsError
from flowstar.model.registry import WorkflowRegistry, load_registry
from flowstar.settings import FlowstarSettings

__all__ = [
    "SHOW_TRACEBACKS",
    "CliError",
    "check_sqlite_file",
    "describe",
    "hands_off",
    "reading",
    "redacted",
    "reporting",
    "run",
    "settings",
    "start_logging",
    "writing",
]

T = TypeVar("T")

# ``flowstar --traceback``: errors are raised as they are (set by the root command each run).
SHOW_TRACEBACKS: ContextVar[bool] = ContextVar("flowstar_cli_tracebacks", default=False)


class CliError(Exception):
    """A failure the command explains in its message (printed as it is)."""


def settings(url: str | None = None) -> FlowstarSettings:
    """The settings from ``FLOWSTAR_*``, with ``--url`` (when given) as the database URL."""
    try:
        return FlowstarSettings.from_env(database_url=url) if url else FlowstarSettings.from_env()
    except WorkflowsError as exc:
        fail(str(exc))


def start_logging(default_level: str = "WARNING") -> None:
    """Configure logging (``flowstar.logs``) at ``FLOWSTAR_LOG_LEVEL``, else ``default_level``.

    Operator commands print their own results and log warnings only by default: the
    engine's INFO lines would bury them.
    """
    try:
        configure_logging(level=os.environ.get("FLOWSTAR_LOG_LEVEL") or default_level)
    except WorkflowsError as exc:  # an unknown level or format
        fail(str(exc))


def redacted(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password to find either
        return url


def run(work: Coroutine[Any, Any, T], *, database: str | None = None) -> T:
    """Run a command's coroutine, reporting its errors (see ``reporting``)."""
    with reporting(database=database):
        return asyncio.run(work)


@contextmanager
def reporting(*, database: str | None = None) -> Iterator[None]:
    """Turn any error of the block into one line on stderr and exit code 1.

    ``database`` (the URL the command uses) names the database in errors that come from it.
    With ``flowstar --traceback`` the error is raised instead, traceback and all.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if SHOW_TRACEBACKS.get():
            raise
        message = describe(exc)
        if database is not None and _from_database(exc):
            message = f"database at {redacted(database)}: {message}"
        fail(message)


def describe(exc: BaseException) -> str:
    """What went wrong, in one line: flowstar's own message, or the driver's first line."""
    if isinstance(exc, CliError | WorkflowsError):
        return str(exc)
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    cause = orig if isinstance(orig, BaseException) else exc
    text = str(cause).strip().splitlines()
    detail = text[0] if text else "no details"
    if _is_redis_error(exc):
        return f"Redis: {detail}"
    return f"{type(cause).__name__}: {detail}"


def _from_database(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database layer (or from connecting to it)."""
    if isinstance(exc, StoreUnavailableError | OSError | TimeoutError):
        return True
    return any(cls.__module__.split(".")[0] in ("sqlalchemy", "asyncpg", "sqlite3") for cls in type(exc).__mro__)


def _is_redis_error(exc: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] == "redis" for cls in type(exc).__mro__)


def check_sqlite_file(url: str) -> None:
    """Refuse a SQLite file that does not exist: connecting would create an empty one (a
    mistyped path would then read as a database with no instances)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    in_a_file = parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
    if in_a_file and not Path(str(database)).expanduser().exists():
        raise CliError(f"no SQLite database at {database} (flowstar db upgrade creates one)")


def _persistent(registry: WorkflowRegistry, url: str) -> Engine:
    from flowstar.db import PersistentExecutionEngine

    return PersistentExecutionEngine(registry, url=url)


@asynccontextmanager
async def reading(config: FlowstarSettings, *, registry: bool = False) -> AsyncIterator[Engine]:
    """An engine for reads: nothing is recovered or run by it.

    Reads need no definitions, so the registry (``FLOWSTAR_REGISTRY``) is only loaded when
    ``registry`` is true: listing instances works without the application's code.
    """
    check_sqlite_file(config.database_url)
    engine = _persistent(load_registry(config.registry) if registry else WorkflowRegistry(), config.database_url)
    try:
        yield engine
    finally:
        await engine.close()


@asynccontextmanager
async def writing(config: FlowstarSettings) -> AsyncIterator[Engine]:
    """An engine for changes, on the deployment's runtime (see the module's docstring).

    Only what the command itself activates runs here (nothing is recovered): other
    instances' pending work belongs to the processes that run workflows.
    """
    if config.redis_url:
        async with _saq_engine(config) as engine:
            yield engine
        return
    engine = _persistent(load_registry(config.registry), config.database_url)
    try:
        yield engine
    finally:
        await engine.close()


@asynccontextmanager
async def _saq_engine(config: FlowstarSettings) -> AsyncIterator[Engine]:
    """The SAQ engine of a worker deployment, enqueueing to its queue.

    Closing it publishes the events this command committed (one drain of the outbox).
    """
    from saq.queue.redis import RedisQueue

    from flowstar.saq.worker import build_engine, redis_client

    client = redis_client(config)
    try:
        await client.ping()
    except Exception as exc:
        # Checked before anything is written: a change the workers would not hear of until
        # the reconciler's next pass is worse than no change and a clear message.
        await client.aclose()
        raise CliError(
            f"Redis at {redacted(config.redis_url or '')} is unreachable ({describe(exc).rstrip('.')}); "
            "nothing was changed. Start it, or unset FLOWSTAR_REDIS_URL to run the steps in this process."
        ) from exc
    queue = RedisQueue(client, name=config.queue)
    await queue.connect()
    try:
        engine = build_engine(config, queue, run_reconciler=False)
        try:
            yield engine
        finally:
            await engine.close()
    finally:
        # Redis lost after the change committed: the change stands (the reconciler hands
        # its steps to the workers), so closing must not turn it into an error.
        with suppress(Exception):
            await queue.disconnect()


def hands_off(engine: Engine) -> bool:
    """Whether the engine hands steps to workers (so a call returns before they run)."""
    return not engine.wait_for_settle
