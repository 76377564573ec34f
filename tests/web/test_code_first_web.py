"""Code-first workflows in the REST API and the inbox, exactly like graph workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.web.ui.test_pages import _csrf, _sign_in

from flowstar import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from flowstar.flow import complete, get_context, goto, step, workflow
from flowstar.web import UserDirectory, WorkflowWebPlugin


class Expense(msgspec.Struct):
    amount: float
    decision: str = ""
    notes: str = ""


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()

    @workflow("expense_review", registry=registry)
    class ExpenseReview:
        Context = Expense

        @step(start=True)
        def route(self):
            return goto(self.review if get_context().amount > 100 else self.book)

        @step(title="Review the expense", assignee="bob")
        def review(self, decision: Literal["approve", "reject"], notes: str = ""):
            ctx = get_context()
            ctx.decision, ctx.notes = decision, notes
            return goto(self.book)

        @step()
        def book(self):
            return complete(booked=True)

    return registry


@pytest.fixture
async def app_engine() -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    engine = LocalExecutionEngine(_registry())
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="s" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


async def test_the_api_lists_draws_and_starts_a_code_first_workflow() -> None:
    engine = LocalExecutionEngine(_registry())
    app = Litestar(plugins=[WorkflowWebPlugin(engine=engine, secret_key="s" * 32, enable_ui=False)])
    async with AsyncTestClient(app) as client:
        names = [d["name"] for d in (await client.get("/workflows/definitions")).json()]
        assert "expense_review" in names
        graph = (await client.get("/workflows/definitions/expense_review/graph")).json()
        edges = {(e["source"], e["target"]) for e in graph["edges"]}
        assert edges == {("route", "review"), ("route", "book"), ("review", "book")}
        assert "route" in graph["mermaid"]

        body = {"definition_name": "expense_review", "input_data": {"amount": 250}}
        started = await client.post("/workflows/instances", json=body)
        assert started.status_code == 200, started.text
        instance_id = started.json()["id"]
        (task,) = (await client.get("/workflows/tasks", params={"status": "pending"})).json()
        assert task["instance_id"] == instance_id
        detail = (await client.get(f"/workflows/tasks/{task['id']}")).json()
        assert detail["form_schema"]["properties"]["decision"]["enum"] == ["approve", "reject"]
        assert detail["form_schema"]["required"] == ["decision"]

        bad = await client.post(f"/workflows/tasks/{task['id']}/complete", json={"output_data": {"decision": "maybe"}})
        assert bad.status_code == 422, bad.text
        done = await client.post(
            f"/workflows/tasks/{task['id']}/complete",
            json={"output_data": {"decision": "approve", "notes": "fine"}, "completed_by": "bob"},
        )
        assert done.status_code == 200, done.text
    finished = await engine.get_instance(instance_id)
    await engine.close()
    assert finished.status is WorkflowStatus.COMPLETED
    assert (finished.context.data["decision"], finished.context.data["booked"]) == ("approve", True)


async def test_the_inbox_shows_and_completes_a_code_first_task(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense_review", {"amount": 500}, tenant_id="acme")
    (task,) = (await engine.find_tasks(instance_id=instance.id)).items
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")
        inbox = await client.get("/workflows/ui/")
        assert "Review the expense" in inbox.text
        page = await client.get(f"/workflows/ui/tasks/{task.id}")
        assert page.status_code == 200
        assert 'name="decision"' in page.text
        posted = await client.post(
            f"/workflows/ui/tasks/{task.id}",
            data={"decision": "reject", "notes": "too much", "_csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )
        assert posted.status_code == 303, posted.text
    finished = await engine.get_instance(instance.id)
    assert finished.status is WorkflowStatus.COMPLETED
    assert (finished.context.data["decision"], finished.context.data["notes"]) == ("reject", "too much")
