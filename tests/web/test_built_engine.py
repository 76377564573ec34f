"""With no engine given, the plugin builds one from settings (migrated SQLite) and closes it."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar.settings import FlowstarSettings
from flowstar.web import WorkflowWebPlugin


async def test_plugin_builds_a_sqlite_engine_that_survives_a_restart(tmp_path: Path) -> None:
    await _restart_round_trip(FlowstarSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'flowstar.db'}"))


async def test_plugin_builds_a_postgresql_engine(own_pg_database_url: str) -> None:
    await _restart_round_trip(FlowstarSettings(database_url=own_pg_database_url))


async def _restart_round_trip(settings: FlowstarSettings) -> None:
    body = {"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}}

    def app() -> Litestar:
        return Litestar(plugins=[WorkflowWebPlugin(settings=settings, enable_ui=False)])

    first = app()
    async with AsyncTestClient(first) as client:
        started = await client.post("/workflows/instances", json=body)
        assert started.status_code == 200
        instance_id = started.json()["id"]
    holder = first.state["flowstar_engine_holder"]
    assert holder.owned
    assert not holder.running  # closed by the app's lifespan
    async with AsyncTestClient(app()) as client:
        (task,) = (await client.get("/workflows/tasks", params={"instance_id": instance_id})).json()
        done = await client.post(
            f"/workflows/tasks/{task['id']}/complete",
            json={"output_data": {"decision": "reject"}, "completed_by": "bob"},
        )
        assert done.status_code == 200
        assert done.json()["current_step"] != "manager_approval", done.json()
