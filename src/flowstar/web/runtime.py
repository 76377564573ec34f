"""The engine behind the web plugin: the one it was given, or one it builds and owns."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from flowstar.model.errors import StoreUnavailableError
from flowstar.settings import FlowstarSettings

if TYPE_CHECKING:
    from flowstar.engine.core import Engine

__all__ = ["EngineHolder", "build_engine_from_settings"]

log = structlog.get_logger("flowstar.web")


async def build_engine_from_settings(settings: FlowstarSettings) -> tuple[Engine, Any]:
    """An engine for ``settings`` and the SAQ queue it dispatches to (None in-process).

    No ``redis_url``: the embedded default, the SQLite (or other SQL) database migrated to the
    head revision and the steps run in this process.  With ``redis_url``: the SAQ engine,
    whose steps a worker (``saq flowstar.saq.worker.settings``) runs.
    """
    from flowstar.db.migrate import upgrade_async
    from flowstar.model.registry import load_registry

    await upgrade_async(settings.database_url)
    if settings.redis_url:
        from saq.queue.redis import RedisQueue

        from flowstar.saq.worker import build_engine, redis_client

        queue = RedisQueue(redis_client(settings), name=settings.queue)
        await queue.connect()
        saq_engine = build_engine(settings, queue, run_reconciler=False)
        await saq_engine.start()
        return saq_engine, queue
    from flowstar.db.store import SQLAlchemyStore
    from flowstar.engine.local import LocalExecutionEngine

    engine = LocalExecutionEngine(load_registry(settings.registry), SQLAlchemyStore.from_url(settings.database_url))
    await engine.recover()
    return engine, None


class EngineHolder:
    """Hands out the engine; builds it on first use when the plugin owns it.

    Built lazily (not only in the app's lifespan) so that a test client used without its
    context manager, as in the reference documents, still reaches a working engine.
    """

    def __init__(self, engine: Engine | None, settings: FlowstarSettings | None) -> None:
        self._engine = engine
        self.owned = engine is None
        self._settings = settings
        self._queue: Any = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        """Whether an engine is at hand (given, or built and not yet closed)."""
        return self._engine is not None

    async def get(self) -> Engine:
        """The engine (built and started on the first call when owned).

        Raises:
            StoreUnavailableError: it could not be built (a database or Redis out of reach,
                a bad URL); the next call tries again.  The cause goes to the log, not to
                the caller: it is the server's business.
        """
        if self._engine is not None:
            return self._engine
        async with self._lock:
            if self._engine is None:
                settings = self._settings or FlowstarSettings.from_env()
                try:
                    self._engine, self._queue = await build_engine_from_settings(settings)
                except Exception as exc:
                    log.error("the workflow engine could not be started", error=_described(exc, settings))
                    raise StoreUnavailableError(
                        "the workflow engine could not be started (its database or Redis is out of reach,"
                        " or misconfigured); the server's log says why"
                    ) from exc
        return self._engine

    async def close(self) -> None:
        """Close the engine when the plugin built it (an engine passed in is the app's)."""
        if not self.owned or self._engine is None:
            return
        engine, self._engine = self._engine, None
        await engine.close()
        if self._queue is not None:
            await self._queue.disconnect()
            self._queue = None


def _described(exc: Exception, settings: FlowstarSettings) -> str:
    """``exc`` in words with the passwords of the settings' URLs hidden (the error of a URL
    that does not parse quotes the whole URL)."""
    text = f"{type(exc).__name__}: {exc}"
    for url in (settings.database_url, settings.redis_url):
        password = urlsplit(url).password if url else None
        if password:
            text = text.replace(password, "***")
    return text
