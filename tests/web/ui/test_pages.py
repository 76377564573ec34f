"""The inbox pages through the plugin: sign-in, the user's list, a task's form, a 422 with
the input kept, completion, another user's 403, CSRF, and the static assets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Set, linear

from flowstar import BaseHumanStep, LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

SCHEMA = {
    "type": "object",
    "required": ["decision", "amount"],
    "properties": {
        "decision": {"enum": ["approve", "reject"], "description": "Your call"},
        "amount": {"type": "number", "minimum": 0},
        "note": {"type": "string"},
    },
}


def _engine(clock: ManualClock) -> LocalExecutionEngine:
    registry = WorkflowRegistry()
    approve = BaseHumanStep(
        "approve", title="Approve <expense>", assignee_key="who", form_schema=SCHEMA, due_in=timedelta(hours=1)
    )
    registry.register_definition(linear("expense", approve, Set("done")))
    registry.register_definition(linear("leave", BaseHumanStep("grant", title="Grant leave", assignee_key="who")))
    registry.register_definition(linear("pool", BaseHumanStep("pick", title="Pick me", assignee_group="managers")))
    return LocalExecutionEngine(registry, clock=clock)


@pytest.fixture
async def app_engine(clock: ManualClock) -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    engine = _engine(clock)
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="s" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


def _csrf(page: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def _sign_in(client: AsyncTestClient[Litestar], user: str) -> None:
    page = await client.get("/workflows/ui/login")
    assert page.status_code == 200
    response = await client.post(
        "/workflows/ui/login",
        data={"username": user, "password": user, "_csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/workflows/ui/"


async def test_inbox_needs_a_sign_in(app_engine: Any) -> None:
    app, _ = app_engine
    async with AsyncTestClient(app) as client:
        response = await client.get("/workflows/ui/", follow_redirects=False)
        assert response.status_code in (302, 303, 307)
        assert response.headers["location"] == "/workflows/ui/login"
        page = await client.get("/workflows/ui/login")
        bad = await client.post(
            "/workflows/ui/login", data={"username": "alice", "password": "nope", "_csrf_token": _csrf(page.text)}
        )
        assert bad.status_code == 401
        assert "wrong password" in bad.text
        assert 'value="alice"' in bad.text


async def test_post_without_csrf_token_is_refused(app_engine: Any) -> None:
    app, _ = app_engine
    async with AsyncTestClient(app) as client:
        await client.get("/workflows/ui/login")
        response = await client.post("/workflows/ui/login", data={"username": "alice", "password": "alice"})
        assert response.status_code == 403


async def test_task_form_errors_then_completion(app_engine: Any, clock: ManualClock) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    (task,) = (await engine.find_tasks(instance_id=instance.id)).items
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")
        inbox = await client.get("/workflows/ui/")
        assert inbox.status_code == 200
        assert f'href="/workflows/ui/tasks/{task.id}"' in inbox.text
        assert "Approve &lt;expense&gt;" in inbox.text  # escaped
        assert 'sse-connect="/workflows/events"' in inbox.text
        assert "overdue</strong>" not in inbox.text
        clock.advance(timedelta(hours=2))
        assert "overdue</strong>" in (await client.get("/workflows/ui/fragments/tasks")).text

        page = await client.get(f"/workflows/ui/tasks/{task.id}")
        assert page.status_code == 200
        assert 'type="radio"' in page.text
        assert 'id="f-amount-help"' not in page.text
        assert '<p class="help" id="f-decision-help">Your call</p>' in page.text
        token = _csrf(page.text)
        bad = await client.post(
            f"/workflows/ui/tasks/{task.id}", data={"amount": "-3", "note": "<b>hi</b>", "_csrf_token": token}
        )
        assert bad.status_code == 422
        assert '<p class="field-error" id="f-decision-error">this field is required</p>' in bad.text
        assert 'id="f-amount-error"' in bad.text
        assert 'value="-3"' in bad.text
        assert 'value="&lt;b&gt;hi&lt;/b&gt;"' in bad.text
        assert (await engine.get_task(task.id)).status == TaskStatus.PENDING

        good = await client.post(
            f"/workflows/ui/tasks/{task.id}",
            data={"decision": "approve", "amount": "12.5", "note": "", "_csrf_token": token},
            follow_redirects=False,
        )
        assert good.status_code == 303
    done = await engine.get_instance(instance.id)
    assert done.status == WorkflowStatus.COMPLETED
    completed = await engine.get_task(task.id)
    assert completed.completed_by == "bob"
    assert completed.data == {"decision": "approve", "amount": 12.5}


async def test_another_users_task_is_hidden_and_forbidden(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    (task,) = (await engine.find_tasks(instance_id=instance.id)).items
    other = await engine.start_workflow("expense", {"who": "dave"}, tenant_id="globex")
    (foreign,) = (await engine.find_tasks(instance_id=other.id)).items
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "alice")
        inbox = await client.get("/workflows/ui/")
        assert task.id not in inbox.text
        assert "No tasks." in inbox.text
        page = await client.get(f"/workflows/ui/tasks/{task.id}")
        assert page.status_code == 403
        token = _csrf((await client.get("/workflows/ui/login")).text)
        post = await client.post(
            f"/workflows/ui/tasks/{task.id}", data={"decision": "approve", "amount": "1", "_csrf_token": token}
        )
        assert post.status_code == 403
        assert (await client.get(f"/workflows/ui/tasks/{foreign.id}")).status_code == 404
        assert (await client.get("/workflows/ui/tasks/no-such-task")).status_code == 404
    assert (await engine.get_task(task.id)).status == TaskStatus.PENDING


async def test_static_assets_are_served(app_engine: Any) -> None:
    app, _ = app_engine
    async with AsyncTestClient(app) as client:
        for name in ("vendor/htmx.min.js", "vendor/htmx-ext-sse.min.js", "vendor/mermaid.min.js", "inbox.css"):
            response = await client.get(f"/workflows/ui/static/{name}")
            assert response.status_code == 200, name
        assert "htmx" in (await client.get("/workflows/ui/static/vendor/htmx.min.js")).text


@pytest.mark.parametrize("path", ["%00", "inbox.css%00.png", "vendor", "nope.css", "..%2f..%2fpyproject.toml"])
async def test_a_path_that_is_no_asset_is_a_plain_404(app_engine: Any, path: str) -> None:
    """No 500 for a NUL byte, and no install path in the answer (a directory's 404 named it)."""
    app, _ = app_engine
    async with AsyncTestClient(app) as client:
        response = await client.get(f"/workflows/ui/static/{path}")
        assert (response.status_code, response.json()["detail"]) == (404, "no such file")


async def test_start_a_workflow_and_follow_its_instance(app_engine: Any) -> None:
    app, engine = app_engine
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")
        listing = await client.get("/workflows/ui/start")
        assert 'href="/workflows/ui/start/expense"' in listing.text
        form = await client.get("/workflows/ui/start/expense")
        assert 'name="_json"' in form.text  # no input schema: a JSON textarea
        token = _csrf(form.text)
        bad = await client.post("/workflows/ui/start/expense", data={"_json": "[1", "_csrf_token": token})
        assert bad.status_code == 422
        assert "not valid JSON" in bad.text
        assert "[1</textarea>" in bad.text
        assert (await engine.find_instances()).items == []
        started = await client.post(
            "/workflows/ui/start/expense",
            data={"_json": '{"who": "bob"}', "_csrf_token": token},
            follow_redirects=False,
        )
        assert started.status_code == 303
        (instance,) = (await engine.find_instances()).items
        assert started.headers["location"] == f"/workflows/ui/instances/{instance.id}"
        assert (instance.tenant_id, instance.created_by) == ("acme", "bob")
        page = await client.get(f"/workflows/ui/instances/{instance.id}")
        assert page.status_code == 200
        assert '<dd id="instance-status">waiting</dd>' in page.text
        assert '<pre class="mermaid"' in page.text
        assert "class s0 current" in page.text
        assert "/static/vendor/mermaid.min.js" in page.text
        assert (await client.get("/workflows/ui/start/nope")).status_code == 404
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "alice")
        assert (await client.get(f"/workflows/ui/instances/{instance.id}")).status_code == 403
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "dave")
        assert (await client.get(f"/workflows/ui/instances/{instance.id}")).status_code == 404


async def test_inbox_filters(app_engine: Any, clock: ManualClock) -> None:
    app, engine = app_engine
    await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    await engine.start_workflow("leave", {"who": "bob"}, tenant_id="acme")
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")
        both = (await client.get("/workflows/ui/")).text
        assert "Approve &lt;expense&gt;" in both
        assert "Grant leave" in both
        leave = (await client.get("/workflows/ui/?workflow=leave")).text
        assert "Grant leave" in leave
        assert "Approve &lt;expense&gt;" not in leave
        assert 'hx-get="/workflows/ui/fragments/tasks?tab=open&amp;workflow=leave"' in leave
        assert '<option value="leave" selected>' in leave
        assert "No tasks." in (await client.get("/workflows/ui/?overdue=true")).text
        clock.advance(timedelta(hours=2))  # the expense task (due in 1 h) is overdue now
        late = (await client.get("/workflows/ui/fragments/tasks?overdue=true")).text
        assert "Approve &lt;expense&gt;" in late
        assert "Grant leave" not in late  # no due date


async def test_my_tasks_and_my_groups_tasks(app_engine: Any) -> None:
    app, engine = app_engine
    await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    await engine.start_workflow("pool", {}, tenant_id="acme")
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")  # a manager
        mine = (await client.get("/workflows/ui/?tab=open")).text
        assert "Approve &lt;expense&gt;" in mine
        assert "Pick me" not in mine
        group = (await client.get("/workflows/ui/?tab=group")).text
        assert "Pick me" in group
        assert "Approve &lt;expense&gt;" not in group
        assert "Pick me" in (await client.get("/workflows/ui/fragments/tasks?tab=group")).text
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "carol")  # finance, not a manager
        assert "Pick me" not in (await client.get("/workflows/ui/?tab=group")).text


async def test_inbox_filters_by_priority(clock: ManualClock) -> None:
    registry = WorkflowRegistry()
    registry.register_definition(
        linear("urgent", BaseHumanStep("fix", title="Fix the outage", assignee_key="who", priority=90))
    )
    registry.register_definition(
        linear("later", BaseHumanStep("tidy", title="Tidy the wiki", assignee_key="who", priority=10))
    )
    engine = LocalExecutionEngine(registry, clock=clock)
    app = Litestar(plugins=[WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="s" * 32)])
    for name in ("urgent", "later"):
        await engine.start_workflow(name, {"who": "bob"}, tenant_id="acme")
    async with AsyncTestClient(app) as client:
        await _sign_in(client, "bob")
        both = (await client.get("/workflows/ui/")).text
        assert both.index("Fix the outage") < both.index("Tidy the wiki")  # higher priority first
        high = (await client.get("/workflows/ui/?min_priority=50")).text
        assert "Fix the outage" in high
        assert "Tidy the wiki" not in high
        assert 'id="filter-priority" name="min_priority" inputmode="numeric" value="50"' in high
        assert 'hx-get="/workflows/ui/fragments/tasks?tab=open&amp;min_priority=50"' in high
        fragment = (await client.get("/workflows/ui/fragments/tasks?min_priority=91")).text
        assert "Fix the outage" not in fragment
        assert (await client.get("/workflows/ui/?min_priority=high")).status_code == 400
    await engine.close()
