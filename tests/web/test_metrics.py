"""The plugin's ``/metrics``, ``/health/live`` and ``/health/ready`` over Litestar's test client.

Readiness answers 200 naming each check, or 503 naming the one that failed (a database or a
Redis on a closed port), never 500; ``/metrics`` still answers then, with the failed probe
reported down.  The SAQ cases use the real PostgreSQL and Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from saq.queue.redis import RedisQueue
from sqlalchemy import text
from structlog.testing import capture_logs
from tests.unit.helpers import Set, linear
from tests.unit.metrics_helpers import closed_port, sample, samples

from flowstar import LocalExecutionEngine, User, WorkflowRegistry
from flowstar.db import PersistentExecutionEngine, create_database_engine
from flowstar.db.migrate import upgrade_async
from flowstar.saq.worker import build_engine, redis_client
from flowstar.settings import FlowstarSettings
from flowstar.web import UserDirectory, WorkflowWebPlugin
from flowstar.web.health import MonitoringConfig

PREFIX = "/api/workflows"
METRICS, LIVE, READY = f"{PREFIX}/metrics", f"{PREFIX}/health/live", f"{PREFIX}/health/ready"


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(linear("three", Set("a"), Set("b"), Set("c")))
    return registry


def _app(engine: Any = None, *, on_shutdown: list[Any] | None = None, **options: Any) -> Litestar:
    options.setdefault("enable_ui", False)
    plugin = WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, **options)
    return Litestar(plugins=[plugin], on_shutdown=on_shutdown or [])


async def test_metrics_count_the_steps_the_api_ran() -> None:
    engine = LocalExecutionEngine(_registry())
    app = _app(engine)
    async with AsyncTestClient(app) as client:
        started = await client.post(f"{PREFIX}/instances", json={"definition_name": "three", "input_data": {}})
        assert started.json()["status"] == "completed"
        response = await client.get(METRICS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(response.text)
    for step in ("a", "b", "c"):
        assert sample(found, "flowstar_steps_completed_total", workflow="three", step=step) == 1
        assert sample(found, "flowstar_step_duration_seconds_count", workflow="three", step=step) == 1
    assert sample(found, "flowstar_workflows_started_total", workflow="three") == 1
    assert sample(found, "flowstar_workflows_finished_total", workflow="three", status="completed") == 1
    assert sample(found, "flowstar_commit_duration_seconds_count", outcome="committed") == 4
    assert sample(found, "flowstar_probe_up", probe="store") == 1
    assert app.state["flowstar_metrics"].engine is engine


async def test_two_apps_on_one_engine_serve_the_same_metrics() -> None:
    engine = LocalExecutionEngine(_registry())
    first, second = _app(engine), _app(engine)
    assert first.state["flowstar_metrics"] is second.state["flowstar_metrics"]
    async with AsyncTestClient(first) as client:
        await client.post(f"{PREFIX}/instances", json={"definition_name": "three", "input_data": {}})
    async with AsyncTestClient(second) as client:
        found = samples((await client.get(METRICS)).text)
    assert sample(found, "flowstar_workflows_started_total", workflow="three") == 1


async def test_a_memory_engine_is_live_and_ready_with_nothing_to_check() -> None:
    async with AsyncTestClient(_app(LocalExecutionEngine(_registry()))) as client:
        live = await client.get(LIVE)
        ready = await client.get(READY)
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": {}})


async def _by_header(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """A user provider for tests: the ``x-user`` header names the user; ``admin`` is an admin."""
    name = connection.headers.get("x-user")
    return User(id=name, is_admin=name == "admin") if name else None


async def test_monitoring_routes_stay_open_when_the_api_needs_a_user() -> None:
    app = _app(LocalExecutionEngine(_registry()), user_directory=UserDirectory.demo())
    async with AsyncTestClient(app) as client:
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 401
        assert (await client.get(METRICS)).status_code == 200
        assert (await client.get(LIVE)).status_code == 200
        assert (await client.get(READY)).status_code == 200
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert f"{PREFIX}/instances" in paths
    assert not {METRICS, LIVE, READY} & set(paths)  # operational routes, not the API


async def test_metrics_can_be_for_admins_only_while_health_stays_open() -> None:
    monitoring = MonitoringConfig(metrics_admin_only=True)
    app = _app(LocalExecutionEngine(_registry()), user_provider=_by_header, monitoring=monitoring)
    async with AsyncTestClient(app) as client:
        assert (await client.get(METRICS)).status_code == 401
        assert (await client.get(METRICS, headers={"x-user": "alice"})).status_code == 403
        assert (await client.get(METRICS, headers={"x-user": "admin"})).status_code == 200
        assert (await client.get(READY)).status_code == 200


async def test_metrics_take_a_guard_of_their_own() -> None:
    async def scraper_token(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
        if connection.headers.get("authorization") != "Bearer scrape-me":
            raise PermissionDeniedException("scrapers only")

    app = _app(LocalExecutionEngine(_registry()), monitoring=MonitoringConfig(metrics_guard=scraper_token))
    async with AsyncTestClient(app) as client:
        assert (await client.get(METRICS)).status_code == 403
        assert (await client.get(METRICS, headers={"authorization": "Bearer scrape-me"})).status_code == 200


async def test_monitoring_can_be_switched_off() -> None:
    engine = LocalExecutionEngine(_registry())
    app = _app(engine, monitoring=MonitoringConfig(enabled=False))
    async with AsyncTestClient(app) as client:
        for path in (METRICS, LIVE, READY):
            assert (await client.get(path)).status_code == 404
        await client.post(f"{PREFIX}/instances", json={"definition_name": "three", "input_data": {}})
    assert engine.commit_timer is None  # nothing installed on the engine's commits


async def test_a_database_on_a_closed_port_is_503_naming_the_database() -> None:
    engine = PersistentExecutionEngine(_registry(), url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/x")
    async with AsyncTestClient(_app(engine)) as client:
        ready = await client.get(READY)
        metrics = await client.get(METRICS)
        live = await client.get(LIVE)
    await engine.close()
    body = ready.json()
    assert ready.status_code == 503
    assert body["status"] == "unavailable"
    assert list(body["checks"]) == ["database"]
    assert body["checks"]["database"]["ok"] is False
    assert "refused" in body["checks"]["database"]["error"].lower()
    assert metrics.status_code == 200
    assert sample(samples(metrics.text), "flowstar_probe_up", probe="store") == 0
    assert live.status_code == 200


async def test_an_engine_that_cannot_be_built_is_503_naming_the_engine() -> None:
    settings = FlowstarSettings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/x")
    async with AsyncTestClient(_app(settings=settings)) as client:
        ready = await client.get(READY)
        metrics = await client.get(METRICS)
        live = await client.get(LIVE)
    assert ready.status_code == 503
    assert list(ready.json()["checks"]) == ["engine"]
    assert ready.json()["checks"]["engine"]["ok"] is False
    # The process's own metrics still come; no probe could run.
    assert metrics.status_code == 200
    assert "process_cpu_seconds_total" in metrics.text
    assert "flowstar_probe_up" not in metrics.text
    assert live.status_code == 200


async def test_without_an_engine_the_api_is_503_and_the_log_says_why_without_the_password() -> None:
    settings = FlowstarSettings(database_url=f"postgresql+asyncpg://flow:S3cretPW@127.0.0.1:{closed_port()}/x")
    with capture_logs() as logs:
        async with AsyncTestClient(_app(settings=settings)) as client:
            listed = await client.get(f"{PREFIX}/definitions")
    assert listed.status_code == 503
    assert listed.json()["detail"].startswith("the workflow engine could not be started")
    assert "S3cretPW" not in listed.text
    (failed, *_) = [e for e in logs if e["event"] == "the workflow engine could not be started"]
    assert "refused" in failed["error"].lower()
    assert "S3cretPW" not in str(logs)


# -- the SAQ engine on PostgreSQL and Redis ---------------------------------------------


@pytest.fixture
async def saq_settings(
    own_pg_database_url: str, redis_server_url: str, unique_prefix: str
) -> AsyncIterator[FlowstarSettings]:
    """Settings of an API process on a fresh, migrated database and a queue of the test's own."""
    await upgrade_async(own_pg_database_url)
    redis_url = f"{redis_server_url}/12"
    yield FlowstarSettings(
        database_url=own_pg_database_url,
        redis_url=redis_url,
        queue=unique_prefix,
        registry="tests.web.test_metrics:REGISTRY",
    )
    redis = Redis.from_url(redis_url)
    for pattern in (f"saq:{unique_prefix}:*", f"saq:job:{unique_prefix}:*", f"flowstar:{unique_prefix}:*"):
        keys = [k async for k in redis.scan_iter(match=pattern)]
        if keys:
            await redis.delete(*keys)
    await redis.aclose()


def _saq_app(settings: FlowstarSettings) -> Litestar:
    """An app on an API-side SAQ engine (no reconciler, no relay running).

    The test client runs the app on an event loop of its own: the engine, whose connections
    belong to that loop, is closed there, at the app's shutdown.
    """
    queue = RedisQueue(redis_client(settings), name=settings.queue)
    engine = build_engine(settings, queue, run_reconciler=False)

    async def close() -> None:
        await engine.close()
        with contextlib.suppress(RedisConnectionError):  # the test's Redis may be the one down
            await queue.disconnect()

    return _app(engine, on_shutdown=[close])


REGISTRY = _registry()


async def test_saq_engine_is_ready_and_its_queue_and_outbox_are_scraped(saq_settings: FlowstarSettings) -> None:
    settings = saq_settings
    async with AsyncTestClient(_saq_app(settings)) as client:
        ready = await client.get(READY)
        started = await client.post(f"{PREFIX}/instances", json={"definition_name": "three", "input_data": {}})
        assert started.status_code == 200
        metrics = await client.get(METRICS)
        # Counted now: the engine publishes what is left in the outbox when it closes.
        db = create_database_engine(settings.database_url)
        async with db.connect() as conn:
            rows = (await conn.execute(text("SELECT count(*) FROM workflow_outbox"))).scalar_one()
        await db.dispose()
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "checks": {"database": {"ok": True}, "redis": {"ok": True}}},
    )
    found = samples(metrics.text)
    for probe in ("store", "queue", "events"):
        assert sample(found, "flowstar_probe_up", probe=probe) == 1
    # No worker runs: the first step's job waits in the queue, the start's events in the outbox.
    assert sample(found, "flowstar_queue_jobs", queue=settings.queue, state="queued") == 1
    assert sample(found, "flowstar_queue_jobs", queue=settings.queue, state="active") == 0
    assert 0 <= sample(found, "flowstar_queue_oldest_job_age_seconds", queue=settings.queue) < 30
    assert rows > 0
    assert sample(found, "flowstar_outbox_backlog") == rows
    assert sample(found, "flowstar_workflows_started_total", workflow="three") == 1
    assert (
        sample(found, "flowstar_events_dead_lettered_total", stream=f"flowstar:{settings.queue}:flowstar:events") == 0
    )
    # The API process runs no reconciler: it reports none.
    assert ("flowstar_reconciler_passes_total", ()) not in found


async def test_redis_on_a_closed_port_is_503_naming_redis(tmp_path: Path, unique_prefix: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'flowstar.db'}"
    await upgrade_async(url)
    settings = FlowstarSettings(database_url=url, redis_url=f"redis://127.0.0.1:{closed_port()}/0", queue=unique_prefix)
    async with AsyncTestClient(_saq_app(settings)) as client:
        ready = await client.get(READY)
        metrics = await client.get(METRICS)
    body = ready.json()
    assert ready.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert metrics.status_code == 200
    found = samples(metrics.text)
    assert sample(found, "flowstar_probe_up", probe="store") == 1
    assert sample(found, "flowstar_probe_up", probe="queue") == 0
    assert sample(found, "flowstar_probe_up", probe="events") == 0
