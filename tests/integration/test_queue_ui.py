"""SAQ's queue viewer under {prefix}/admin/queues: admins only, for the engine's SAQ queue."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq.queue.redis import RedisQueue
from tests.integration.saq_support import SaqEnv
from tests.web.conftest import PREFIX, SECRET
from tests.web.test_auth import KEY, _bearer

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.saq.worker import build_engine, redis_client
from flowstar.web import JWTUserProvider, WorkflowWebPlugin


def _app(**runtime: Any) -> Litestar:
    plugin = WorkflowWebPlugin(
        path_prefix=PREFIX, secret_key=SECRET, enable_ui=False, user_provider=JWTUserProvider(KEY), **runtime
    )
    return Litestar(plugins=[plugin])


async def test_an_admin_sees_the_saq_queue(saq_env: SaqEnv) -> None:
    # Built without a call, so that its Redis and database connections are made on the
    # app's own event loop (the test client runs the app on a loop of its own).
    settings = saq_env.settings()
    saq_queue = RedisQueue(redis_client(settings), name=settings.queue)
    engine = build_engine(settings, saq_queue, run_reconciler=False)
    async with AsyncTestClient(_app(engine=engine)) as client:
        started = await client.post(
            f"{PREFIX}/instances", json={"definition_name": "linear3"}, headers=_bearer("admin")
        )
        assert started.status_code == 200, started.text
        page = await client.get(f"{PREFIX}/admin/queues/", headers=_bearer("admin"))
        assert page.status_code == 200, page.text
        assert "text/html" in page.headers["content-type"]
        info = await client.get(f"{PREFIX}/admin/queues/api/queues", headers=_bearer("admin"))
        assert info.status_code == 200, info.text
        (queue,) = info.json()["queues"]
        assert queue["name"] == saq_env.queue
        assert queue["queued"] + queue["active"] + queue["scheduled"] >= 1  # the instance's first step

        assert (await client.get(f"{PREFIX}/admin/queues/", headers=_bearer("bob"))).status_code == 403
        assert (await client.get(f"{PREFIX}/admin/queues/")).status_code == 401
        # Closed on the loop they ran on.
        await asyncio.to_thread(client.blocking_portal.call, engine.close)
        await asyncio.to_thread(client.blocking_portal.call, saq_queue.disconnect)


async def test_an_in_process_engine_has_no_queue_to_show() -> None:
    engine = LocalExecutionEngine(WorkflowRegistry())
    async with AsyncTestClient(_app(engine=engine)) as client:
        answer = await client.get(f"{PREFIX}/admin/queues/", headers=_bearer("admin"))
    await engine.close()
    assert answer.status_code == 404
    assert "no SAQ queue" in answer.json()["detail"]
