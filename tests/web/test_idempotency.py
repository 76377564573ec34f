"""Idempotency keys: one instance per key and tenant in the store, also for concurrent requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.web.conftest import PREFIX, make_app

from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata
from flowstar.demo_workflows import build_registry
from flowstar.web import WorkflowWebPlugin

BODY = {"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}}


async def test_two_apps_in_one_process_keep_their_own_keys() -> None:
    ids = []
    for _ in range(2):
        app, engine = make_app()
        async with AsyncTestClient(app) as client:
            response = await client.post(f"{PREFIX}/instances", json=BODY, headers={"Idempotency-Key": "shared"})
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
            # The instance is this engine's own.
            assert str((await engine.get_instance(ids[-1])).id) == ids[-1]
    assert ids[0] != ids[1]


async def test_concurrent_requests_with_one_key_start_one_instance() -> None:
    app, engine = make_app()
    async with (
        AsyncTestClient(app),  # runs the app's lifespan
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):

        async def start() -> Any:
            return await client.post(f"{PREFIX}/instances", json={**BODY, "idempotency_key": "k1"})

        responses = await asyncio.gather(*(start() for _ in range(8)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    page = await engine.find_instances(workflow_name="expense_approval")
    assert len(page.items) == 1


async def test_the_same_key_in_another_tenant_is_another_instance(client: AsyncTestClient[Any]) -> None:
    first = await client.post(f"{PREFIX}/instances", json={**BODY, "idempotency_key": "k", "tenant_id": "acme"})
    second = await client.post(f"{PREFIX}/instances", json={**BODY, "idempotency_key": "k", "tenant_id": "globex"})
    again = await client.post(f"{PREFIX}/instances", json={**BODY, "idempotency_key": "k", "tenant_id": "acme"})
    assert first.status_code == second.status_code == again.status_code == 200
    assert first.json()["id"] != second.json()["id"]
    assert again.json()["id"] == first.json()["id"]


async def test_keys_outlive_the_app_on_a_shared_database(tmp_path: Path) -> None:
    # Two apps on one SQLite file stand for two API processes, or one restarted.
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    database = create_database_engine(url)
    async with database.begin() as connection:
        await connection.run_sync(metadata.create_all)
    ids = []
    try:
        for _ in range(2):
            engine = PersistentExecutionEngine(build_registry(), engine=database)
            app = Litestar(plugins=[WorkflowWebPlugin(path_prefix=PREFIX, engine=engine, enable_ui=False)])
            async with AsyncTestClient(app) as client:
                response = await client.post(f"{PREFIX}/instances", json=BODY, headers={"Idempotency-Key": "once"})
                assert response.status_code == 200, response.text
                ids.append(response.json()["id"])
            await engine.close()
    finally:
        await database.dispose()
    assert ids[0] == ids[1]


async def test_an_oversized_key_is_422(client: AsyncTestClient[Any]) -> None:
    response = await client.post(f"{PREFIX}/instances", json={**BODY, "idempotency_key": "k" * 256})
    assert response.status_code == 422
    assert "idempotency key" in response.json()["detail"]
