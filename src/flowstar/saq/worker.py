"""SAQ worker settings built from ``FlowstarSettings`` (``saq worker.settings``).

The settings function is called by SAQ before its event loop starts; everything that needs
the loop (database engine, embedded Redis check, the engine itself) is built in the
worker's ``startup`` hook and torn down in ``shutdown``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import structlog
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from flowstar.db.store import SQLAlchemyStore
from flowstar.redis.embedded import RedisHandle, connect_redis
from flowstar.redis.stream_bus import RedisStreamEventBus
from flowstar.saq.dispatcher import JOB_FUNCTION, JobOptions
from flowstar.saq.engine import SAQExecutionEngine
from flowstar.saq.jobs import ENGINE_KEY, run_activation
from flowstar.settings import FlowstarSettings, load_registry

__all__ = ["build_engine", "build_settings", "redis_client"]

log = structlog.get_logger("flowstar.worker")


def redis_client(settings: FlowstarSettings) -> Redis:
    """A client for the configured Redis, starting the embedded one if no URL is set.

    The embedded server is started (or found running) in a short-lived event loop of its
    own; the returned client connects lazily, on whichever loop first uses it.
    """
    if settings.redis_url:
        return Redis.from_url(settings.redis_url)

    async def ensure_server() -> str:
        handle = await connect_redis(None, data_dir=settings.data_dir)
        socket_path = handle.socket_path
        await handle.close(stop=False)
        assert socket_path is not None
        return socket_path

    return Redis(unix_socket_path=asyncio.run(ensure_server()))


def job_options(settings: FlowstarSettings) -> JobOptions:
    """SAQ job options from the settings."""
    return JobOptions(timeout=settings.step_timeout, heartbeat=max(3, settings.heartbeat * 3))


def build_engine(settings: FlowstarSettings, queue: RedisQueue, *, run_reconciler: bool = True) -> SAQExecutionEngine:
    """The engine a worker (or an API process) uses for ``settings``."""
    bus = RedisStreamEventBus(queue.redis, key_prefix=f"flowstar:{settings.queue}:")
    return SAQExecutionEngine(
        load_registry(settings.registry),
        queue=queue,
        persistence=SQLAlchemyStore.from_url(settings.database_url, outbox=True),
        event_bus=bus,
        job_options=job_options(settings),
        run_reconciler=run_reconciler,
        reconcile_interval=settings.reconcile_interval,
        reconcile_grace=settings.reconcile_grace,
    )


class _EmbeddedRedisQueue(RedisQueue):
    """A queue on the embedded Redis: disconnecting it may stop the server.

    SAQ disconnects the queue after the worker's shutdown hooks, so the server can only be
    released here: stopped earlier, the queue's own disconnect would fail against it.
    """

    def __init__(self, redis: Redis, *, name: str, handles: list[RedisHandle]) -> None:
        super().__init__(redis, name=name)
        self._handles = handles

    async def disconnect(self) -> None:
        await super().disconnect()
        # The server stops if no other process (or other handle) is still connected.
        while self._handles:
            await self._handles.pop().close()


def build_settings(settings: FlowstarSettings | None = None) -> dict[str, Any]:
    """The SAQ ``Worker`` settings dict for ``settings`` (default: from the environment)."""
    config = settings or FlowstarSettings.from_env()
    handles: list[RedisHandle] = []
    queue = (
        RedisQueue(redis_client(config), name=config.queue)
        if config.redis_url
        else _EmbeddedRedisQueue(redis_client(config), name=config.queue, handles=handles)
    )
    watchers: list[asyncio.Task[None]] = []

    async def startup(ctx: dict[str, Any]) -> None:
        if not config.redis_url:
            # Hold a connection to the embedded server for the worker's lifetime, so that
            # it is stopped only when its last user leaves.
            handles.append(await connect_redis(None, data_dir=config.data_dir))
        engine = build_engine(config, queue)
        await engine.start()
        ctx[ENGINE_KEY] = engine
        worker = ctx.get("worker")
        if worker is not None:
            watchers.append(asyncio.create_task(_stop_upkeep_on_shutdown(worker), name="flowstar-stop-watch"))
        log.info("flowstar worker ready", queue=config.queue, concurrency=config.concurrency, pid=os.getpid())

    async def shutdown(ctx: dict[str, Any]) -> None:
        for watcher in watchers:
            watcher.cancel()
        engine: SAQExecutionEngine | None = ctx.get(ENGINE_KEY)
        if engine is not None:
            await engine.close()

    return {
        "queue": queue,
        "functions": [(JOB_FUNCTION, run_activation)],
        "concurrency": config.concurrency,
        "startup": startup,
        "shutdown": shutdown,
        # The sweep rescues jobs of dead workers after their heartbeat stops.  The
        # reconciler does it sooner (see reconciler.py); the sweep is the second line.
        "timers": {"schedule": 1, "sweep": 10, "abort": 1, "worker_info": 10},
        # On SIGTERM SAQ waits, up to the grace period, for the tasks it started, and its
        # dequeuers are blocked in BLMOVE until a job arrives (forever by default): a
        # stopped worker would always wait out the whole grace period, taking new jobs
        # meanwhile.  With a timeout they return within a second and are not replaced.
        "dequeue_timeout": 1,
        "shutdown_grace_period_s": config.shutdown_grace,
    }


async def _stop_upkeep_on_shutdown(worker: Any) -> None:
    """Once the worker is told to stop, end its upkeep loops at once.

    SAQ's stop waits for its upkeep tasks too, and each finishes only after its current
    sleep (up to its timer, 10 s): cancelling them (they return quietly once the stop event
    is set) lets the worker exit as soon as its running steps are done.
    """
    # SAQ starts the upkeep tasks right after the startup hooks, and its stop takes them
    # out of ``worker.tasks``: note them as soon as they exist.
    upkeep: list[asyncio.Task[Any]] = []
    while not upkeep and not worker.event.is_set():
        await asyncio.sleep(0.05)
        upkeep = [t for t in worker.tasks if t.get_name() != "process"]
    await worker.event.wait()
    for task in upkeep:
        task.cancel()
