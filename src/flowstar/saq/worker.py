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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from saq.queue.redis import RedisQueue

from flowstar.db.store import SQLAlchemyStore
from flowstar.logs import configure_logging
from flowstar.metrics import FlowstarMetrics
from flowstar.metrics.server import MetricsServer, metrics_address, start_metrics_server
from flowstar.redis.embedded import RedisHandle, connect_redis
from flowstar.redis.stream_bus import RedisStreamEventBus
from flowstar.saq.dispatcher import JOB_FUNCTION, JobOptions
from flowstar.saq.engine import SAQExecutionEngine
from flowstar.saq.jobs import ENGINE_KEY, run_activation
from flowstar.saq.redis_queue import FlowstarRedisQueue
from flowstar.settings import FlowstarSettings, load_registry

__all__ = ["METRICS_KEY", "UPKEEP_TIMERS", "build_engine", "build_settings", "redis_client"]

log = structlog.get_logger("flowstar.worker")

# Where a worker's context holds its metrics server (``MetricsServer``), when it has one.
METRICS_KEY = "flowstar_metrics_server"

# SAQ's upkeep loops (abort checks, the schedule tick, the sweep, worker info) each sleep
# their timer between passes, and a stopping worker waits for every loop's current sleep
# to end: with SAQ's defaults (sweep 60 s, worker info 10 s) a stopped worker would linger
# that long after its last step.  SAQ 0.26 has no public way to wake them, so every loop
# wakes once a second, like the dequeuers (``dequeue_timeout``): a stopped worker exits
# within about a second of its running steps.  The schedule tick must stay a whole second
# (see docs/distributed.md); the sweep, which rescues jobs of dead workers after their
# heartbeat stops, takes a Redis lock for its interval, so one worker per queue sweeps
# each second whatever the number of workers.  Sweeping that often, SAQ's own sweep would
# often catch a job a worker has just dequeued and not yet marked active, and cancel and
# re-run a healthy step (saq #124, #277): workers sweep with ``FlowstarRedisQueue``, which
# waits out that moment.
UPKEEP_TIMERS = {"schedule": 1, "sweep": 1, "abort": 1, "worker_info": 1}


def _retry() -> Retry:
    """One retry, at once, on a new connection.

    redis-py's default (three retries with a jittered back-off of up to 10 s) makes a call
    to a stalled server take up to four socket timeouts plus 7 s before it fails; with one
    retry a call gives up after two socket timeouts (``socket_timeout`` in the URL, 5 s by
    default), while a connection the server dropped is still replaced transparently.
    """
    return Retry(NoBackoff(), 1)


def redis_client(settings: FlowstarSettings) -> Redis:
    """A client for the configured Redis, starting the embedded one if no URL is set.

    The embedded server is started (or found running) in a short-lived event loop of its
    own; the returned client connects lazily, on whichever loop first uses it.  Every call
    is bounded by twice the client's socket timeout (see ``_retry``).
    """
    if settings.redis_url:
        return Redis.from_url(settings.redis_url, retry=_retry())

    async def ensure_server() -> str:
        handle = await connect_redis(None, data_dir=settings.data_dir)
        socket_path = handle.socket_path
        await handle.close(stop=False)
        assert socket_path is not None
        return socket_path

    return Redis(unix_socket_path=asyncio.run(ensure_server()), retry=_retry())


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


async def _serve_metrics(address: tuple[str, int]) -> MetricsServer:
    """The worker's metrics and health port (see ``flowstar.metrics.server``)."""
    host, port = address
    return await start_metrics_server(FlowstarMetrics(), host, port)


class _EmbeddedRedisQueue(FlowstarRedisQueue):
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


def build_settings(
    settings: FlowstarSettings | None = None, *, logs: bool = True, metrics: tuple[str, int] | bool | None = True
) -> dict[str, Any]:
    """The SAQ ``Worker`` settings dict for ``settings`` (default: from the environment).

    Args:
        settings: the configuration; default ``FlowstarSettings.from_env()``.
        logs: configure the process's logging (``flowstar.logs.configure_logging``: plain
            tracebacks without local variables, JSON lines with ``FLOWSTAR_LOG_FORMAT=json``).
            Pass ``False`` when the host application configures logging itself.
        metrics: where the worker serves ``/metrics`` and ``/health/*``: ``True`` reads
            ``FLOWSTAR_METRICS_PORT`` and ``FLOWSTAR_METRICS_HOST`` (no port: no server),
            ``(host, port)`` says it (port 0: any free port), ``None`` or ``False``: none.
    """
    if logs:
        configure_logging()
    config = settings or FlowstarSettings.from_env()
    address = metrics_address() if metrics is True else metrics or None
    handles: list[RedisHandle] = []
    queue = (
        FlowstarRedisQueue(redis_client(config), name=config.queue)
        if config.redis_url
        else _EmbeddedRedisQueue(redis_client(config), name=config.queue, handles=handles)
    )

    async def startup(ctx: dict[str, Any]) -> None:
        if not config.redis_url:
            # Hold a connection to the embedded server for the worker's lifetime, so that
            # it is stopped only when its last user leaves.
            handles.append(await connect_redis(None, data_dir=config.data_dir))
        # The port opens first, so that readiness answers (503) while the engine starts.
        server = await _serve_metrics(address) if address is not None else None
        ctx[METRICS_KEY] = server
        engine = build_engine(config, queue)
        if server is not None:
            server.metrics.install(engine)
        await engine.start()
        ctx[ENGINE_KEY] = engine
        log.info("flowstar worker ready", queue=config.queue, concurrency=config.concurrency, pid=os.getpid())

    async def shutdown(ctx: dict[str, Any]) -> None:
        server: MetricsServer | None = ctx.get(METRICS_KEY)
        if server is not None:
            await server.close()
        engine: SAQExecutionEngine | None = ctx.get(ENGINE_KEY)
        if engine is not None:
            await engine.close()

    return {
        "queue": queue,
        "functions": [(JOB_FUNCTION, run_activation)],
        "concurrency": config.concurrency,
        "startup": startup,
        "shutdown": shutdown,
        "timers": dict(UPKEEP_TIMERS),
        # On SIGTERM SAQ waits, up to the grace period, for the tasks it started, and its
        # dequeuers are blocked in BLMOVE until a job arrives (forever by default): a
        # stopped worker would always wait out the whole grace period, taking new jobs
        # meanwhile.  With a timeout they return within a second and are not replaced.
        "dequeue_timeout": 1,
        "shutdown_grace_period_s": config.shutdown_grace,
    }
