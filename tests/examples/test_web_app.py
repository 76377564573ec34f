"""examples/web_app.py serves the REST API at /api/workflows."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.examples.conftest import import_example


async def test_web_app_runs_an_expense_report() -> None:
    example = import_example("web_app")
    async with AsyncTestClient(example.app) as client:
        started = await client.post(
            "/api/workflows/instances",
            json={"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}},
        )
        assert started.status_code == 200
        assert started.json()["current_step"] == "manager_approval"
        (task,) = (await client.get("/api/workflows/tasks", params={"instance_id": started.json()["id"]})).json()
        assert task["assignee_id"] == "bob"
        assert (await client.get("/schema/openapi.json")).json()["paths"]["/api/workflows/instances"]
