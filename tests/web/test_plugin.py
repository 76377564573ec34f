"""What the plugin mounts for its options, and the dependencies handlers can inject."""

from __future__ import annotations

from uuid import uuid4

from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from flowstar import LocalExecutionEngine
from flowstar.demo_workflows import build_registry
from flowstar.web import UserDirectory, WebConfig, WorkflowWebPlugin
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep


@get("/whoami")
async def whoami(engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep) -> dict[str, object]:
    return {
        "user": current_user.id if current_user is not None else None,
        "prefix": web_config.path_prefix,
        "definitions": len(engine.registry.list_definitions()),
    }


async def test_defaults_mount_api_and_ui_and_inject_dependencies() -> None:
    plugin = WorkflowWebPlugin(engine=LocalExecutionEngine(build_registry()), user_directory=UserDirectory.demo())
    app = Litestar(route_handlers=[whoami], plugins=[plugin])
    async with AsyncTestClient(app) as client:
        assert (await client.get("/workflows/ui/login")).status_code == 200
        assert (await client.get("/workflows/tasks")).status_code == 401
        assert (await client.get("/whoami")).json() == {"user": None, "prefix": "/workflows", "definitions": 3}
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
        assert "/workflows/instances" in paths
        assert "/workflows/events" in paths


async def test_api_and_admin_can_be_switched_off() -> None:
    engine = LocalExecutionEngine(build_registry())
    no_admin = Litestar(plugins=[WorkflowWebPlugin(WebConfig(engine=engine, enable_ui=False, enable_admin=False))])
    async with AsyncTestClient(no_admin) as client:
        assert (await client.get("/workflows/definitions")).status_code == 200
        assert (await client.post(f"/workflows/instances/{uuid4()}/cancel", json={})).status_code in (404, 405)
    no_api = Litestar(plugins=[WorkflowWebPlugin(engine=engine, enable_ui=False, enable_api=False)])
    async with AsyncTestClient(no_api) as client:
        assert (await client.get("/workflows/definitions")).status_code == 404
    # The engine was the application's: the plugin did not close it.
    started = await engine.start_workflow("expense_approval", {"amount": 1})
    assert (await engine.get_instance(started.id)).current_step == started.current_step != "submit_expense"
