"""examples/code_first_review_action.py: a step with inputs completed over HTTP as a named action.

Besides the example's ``main()``, the app it builds is driven with Litestar's test client
on every store (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar import LocalExecutionEngine, WorkflowStatus
from flowstar.db import PersistentExecutionEngine, create_database_engine
from flowstar.engine.core import Engine
from flowstar.flow import engine as facade
from tests.engine.conftest import (  # noqa: F401 - the engine suite's store fixtures, used here
    pg_tables_url,
    sqlite_template,
    store_url,
)
from tests.examples.conftest import import_example

Client = AsyncTestClient[Litestar]

PREFIX = "/api/workflows"
ACTION_URL = f"{PREFIX}/actions/expense_submit_review"


@pytest.fixture
def example() -> ModuleType:
    return import_example("code_first_review_action")


@pytest.fixture
async def client(example: ModuleType, store_url: str | None) -> AsyncIterator[Client]:  # noqa: F811 - imported above
    """A test client of the example's app, over an engine on the store under test.

    The client runs the app on an event loop of its own, and an asyncpg connection belongs
    to the loop that opened it: the engine is used only through HTTP, as another service
    would use it, and the app's shutdown closes it on that same loop.
    """
    engine: Engine
    if store_url is None:
        engine = LocalExecutionEngine(example.registry)
        app = example.create_app(engine)
    else:
        database = create_database_engine(store_url)
        engine = PersistentExecutionEngine(example.registry, engine=database)
        app = example.create_app(engine)
        app.on_shutdown.append(database.dispose)
    app.on_shutdown.append(engine.close)  # the hooks run last first: the engine, then its database
    async with AsyncTestClient(app) as client:
        yield client


async def start(client: Client, **input_data: Any) -> dict[str, Any]:
    """Start an ``expense_approval`` instance over HTTP; its ``InstanceOut``."""
    started = await client.post(
        f"{PREFIX}/instances", json={"definition_name": "expense_approval", "input_data": input_data}
    )
    assert started.status_code == 200, started.text
    return dict(started.json())


async def instance(client: Client, instance_id: str) -> dict[str, Any]:
    """The instance as the API shows it now."""
    found = await client.get(f"{PREFIX}/instances/{instance_id}")
    assert found.status_code == 200, found.text
    return dict(found.json())


async def open_tasks(client: Client, instance_id: str) -> list[dict[str, Any]]:
    """The instance's pending tasks, each with its form schema."""
    listed = await client.get(f"{PREFIX}/tasks", params={"instance_id": instance_id, "status": "pending"})
    assert listed.status_code == 200, listed.text
    return [(await client.get(f"{PREFIX}/tasks/{task['id']}")).json() for task in listed.json()]


async def test_main_refuses_a_missing_field_then_completes_the_review(
    load_example: Callable[[str], ModuleType],
) -> None:
    run, refused = await load_example("code_first_review_action").main()
    assert (run.status, run.current_step) == (WorkflowStatus.COMPLETED, "await_review")
    assert run.data == {"expense_id": 42, "reviewer_notes": "Approved", "priority": "high", "status": "reviewed"}
    assert refused == {
        "status_code": 422,
        "detail": "form data is invalid: reviewer_notes: this field is required",
        "errors": [{"pointer": "/reviewer_notes", "message": "this field is required"}],
    }
    assert facade._engine is None  # main closed the engine it gave the process-wide facade


async def test_the_step_with_inputs_waits_with_a_task_whose_form_is_the_review(client: Client) -> None:
    started = await start(client, expense_id=7)
    assert (started["status"], started["current_step"]) == ("waiting", "await_review")
    (task,) = await open_tasks(client, started["id"])
    assert (task["step_name"], task["title"]) == ("await_review", "Review the expense")
    schema = task["form_schema"]
    assert schema["required"] == ["reviewer_notes", "priority"]
    assert schema["properties"]["priority"]["enum"] == ["low", "medium", "high"]
    assert schema["properties"]["reviewer_notes"]["maxLength"] == 500


async def test_the_action_completes_the_step_with_the_fields(client: Client) -> None:
    started = await start(client, expense_id=7)
    body = {"instance_id": started["id"], "reviewer_notes": "Approved", "priority": "high"}
    done = await client.post(ACTION_URL, json=body)
    assert done.status_code == 200, done.text
    assert (done.json()["id"], done.json()["status"]) == (started["id"], "completed")
    finished = await instance(client, started["id"])
    assert (finished["status"], finished["current_step"]) == ("completed", "await_review")
    assert finished["data"] == {"expense_id": 7, "reviewer_notes": "Approved", "priority": "high", "status": "reviewed"}
    assert await open_tasks(client, started["id"]) == []
    again = await client.post(ACTION_URL, json=body)
    assert again.status_code == 404  # the step's task is done: no open step for the action
    assert again.json()["detail"] == f"instance {started['id']} has no open step for action 'expense_submit_review'"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"priority": "high"}, [{"pointer": "/reviewer_notes", "message": "this field is required"}]),
        (
            {"reviewer_notes": "Approved", "priority": "urgent"},
            [{"pointer": "/priority", "message": "'urgent' is not one of ['low', 'medium', 'high']"}],
        ),
        (
            {"reviewer_notes": "x" * 501, "priority": "low"},
            [{"pointer": "/reviewer_notes", "message": f"'{'x' * 501}' is too long"}],
        ),
    ],
    ids=["missing-field", "not-a-choice", "too-long"],
)
async def test_fields_that_break_the_form_are_422_and_change_nothing(
    client: Client, fields: dict[str, Any], errors: list[dict[str, str]]
) -> None:
    started = await start(client)
    refused = await client.post(ACTION_URL, json={"instance_id": started["id"], **fields})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == errors
    assert refused.json()["detail"].startswith("form data is invalid: ")
    still = await instance(client, started["id"])
    assert (still["status"], still["current_step"], still["data"]["status"]) == ("waiting", "await_review", "pending")
    (task,) = await open_tasks(client, started["id"])
    assert task["status"] == "pending"


async def test_a_body_without_the_instance_id_is_400(client: Client) -> None:
    refused = await client.post(ACTION_URL, json={"reviewer_notes": "Approved", "priority": "high"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "instance_id: the id of the instance whose step the action completes"
