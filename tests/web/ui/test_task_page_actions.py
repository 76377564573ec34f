"""The task page's actions through the plugin: claim and unclaim, a second candidate's view,
comments and the audit trail, reassignment with a reason, CSRF, and refusals shown as 4xx
messages (a claim-first completion, a claimed task, a completed task)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Set, linear
from tests.web.ui.test_pages import _csrf, _sign_in

from flowstar import BaseHumanStep, LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.model.enums import TaskStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

UI = "/workflows/ui"
SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean", "title": "OK"}}}


def _engine() -> LocalExecutionEngine:
    registry = WorkflowRegistry()
    # Bob (a manager) and carol may claim a review; an expense is assigned to one user.
    review = BaseHumanStep(
        "review", title="Review it", candidate_groups=["managers"], candidate_users=["carol"], form_schema=SCHEMA
    )
    registry.register_definition(linear("review", review, Set("done")))
    expense = BaseHumanStep("approve", title="Approve it", assignee_key="who", form_schema=SCHEMA, priority=80)
    registry.register_definition(linear("expense", expense, Set("done")))
    return LocalExecutionEngine(registry, clock=ManualClock())


@pytest.fixture
async def app_engine() -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    engine = _engine()
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="t" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


async def _task_id(engine: LocalExecutionEngine, workflow: str, data: dict[str, Any]) -> str:
    instance = await engine.start_workflow(workflow, data, tenant_id="acme")
    (task,) = (await engine.find_tasks(instance_id=instance.id)).items
    return task.id


@asynccontextmanager
async def _signed_in(app: Litestar, user: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        await _sign_in(client, user)
        yield client


async def _page(client: AsyncTestClient[Litestar], task_id: str) -> str:
    response = await client.get(f"{UI}/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.text


async def _act(client: AsyncTestClient[Litestar], task_id: str, action: str, **fields: str) -> Any:
    """Post one of the task page's forms with the page's CSRF token (redirects not followed)."""
    token = _csrf(await _page(client, task_id))
    return await client.post(
        f"{UI}/tasks/{task_id}/{action}", data={**fields, "_csrf_token": token}, follow_redirects=False
    )


def _audit_rows(page: str) -> list[list[str]]:
    """The audit table's rows as their cells' text (time, who, what, details)."""
    table = page.split('id="audit"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(<td>.*?)</tr>", table, re.S)
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]


async def test_claim_then_unclaim_and_a_second_candidate_sees_claimed_by(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "review", {})
    async with _signed_in(app, "bob") as bob:
        page = await _page(bob, task_id)
        assert f'action="{UI}/tasks/{task_id}/claim"' in page
        assert "Nobody has claimed this task yet." in page
        assert "<fieldset disabled" in page  # a candidate task is claimed before it is completed
        assert "Claim this task to work on it" in page
        refused = await bob.post(f"{UI}/tasks/{task_id}", data={"ok": "true", "_csrf_token": _csrf(page)})
        assert refused.status_code == 403
        assert "claim the task first" in refused.text
        assert (await engine.get_task(task_id)).status == TaskStatus.PENDING

        claimed = await _act(bob, task_id, "claim")
        assert claimed.status_code == 303
        assert claimed.headers["location"] == f"{UI}/tasks/{task_id}"
        assert (await engine.get_task(task_id)).claimed_by == "bob"
        page = await _page(bob, task_id)
        assert "You have claimed this task." in page
        assert f'action="{UI}/tasks/{task_id}/unclaim"' in page
        assert f'action="{UI}/tasks/{task_id}/claim"' not in page
        assert "<fieldset disabled" not in page
        assert "<td>bob</td>" in (await bob.get(f"{UI}/?tab=open")).text  # the inbox's "claimed by"

    async with _signed_in(app, "carol") as carol:
        other = await _page(carol, task_id)
        assert "Claimed by bob." in other
        assert f'action="{UI}/tasks/{task_id}/claim"' not in other
        assert f'action="{UI}/tasks/{task_id}/unclaim"' not in other
        assert "<fieldset disabled" in other
        taken = await _act(carol, task_id, "claim")
        assert taken.status_code == 409
        assert "is claimed by bob" in taken.text
        assert 'role="alert"' in taken.text
    async with _signed_in(app, "bob") as bob:
        unclaimed = await _act(bob, task_id, "unclaim")
        assert unclaimed.status_code == 303
        assert (await engine.get_task(task_id)).claimed_by is None
        again = await _act(bob, task_id, "unclaim")
        assert again.status_code == 409
        assert "is not claimed" in again.text
        page = await _page(bob, task_id)
        assert f'action="{UI}/tasks/{task_id}/claim"' in page
        assert [row[1:3] for row in _audit_rows(page)] == [
            ["(workflow)", "Created"],
            ["bob", "Claimed"],
            ["bob", "Unclaimed"],
        ]


async def test_a_comment_shows_on_the_page_and_in_the_audit(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "expense", {"who": "bob"})
    async with _signed_in(app, "bob") as client:
        assert "No comments yet." in await _page(client, task_id)
        empty = await _act(client, task_id, "comment", text="   ")
        assert empty.status_code == 422
        assert "a comment needs some text" in empty.text

        posted = await _act(client, task_id, "comment", text="<b>Receipt</b> attached")
        assert posted.status_code == 303
        assert posted.headers["location"] == f"{UI}/tasks/{task_id}"
        page = await _page(client, task_id)
        assert '<p class="comment-text" style="white-space: pre-wrap">&lt;b&gt;Receipt&lt;/b&gt; attached</p>' in page
        assert "No comments yet." not in page
        assert _audit_rows(page)[-1][1:] == ["bob", "Commented", "&lt;b&gt;Receipt&lt;/b&gt; attached"]
    (entry,) = [e for e in await engine.task_audit(task_id) if e.action == "commented"]
    assert (entry.actor, entry.details["text"]) == ("bob", "<b>Receipt</b> attached")


async def test_reassign_with_a_reason_moves_the_task_to_the_other_inbox(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "expense", {"who": "bob"})
    async with _signed_in(app, "bob") as bob:
        page = await _page(bob, task_id)
        assert '<label for="reassign-reason">Reason (required)</label>' in page
        assert '<option value="carol">Carol (finance)</option>' in page
        assert '<option value="dave">' not in page  # another tenant's user
        no_reason = await _act(bob, task_id, "reassign", assignee="carol", reason=" ")
        assert no_reason.status_code == 422
        assert "a reassignment needs a reason" in no_reason.text
        assert 'name="assignee" list="reassign-users" aria-describedby="reassign-hint" value="carol"' in no_reason.text
        nobody = await _act(bob, task_id, "reassign", assignee="zed", reason="why not")
        assert nobody.status_code == 422
        assert "there is no user &#39;zed&#39;" in nobody.text
        assert (await engine.get_task(task_id)).assignee_id == "bob"

        moved = await _act(bob, task_id, "reassign", assignee="carol", reason="bob is on leave")
        assert moved.status_code == 303
        assert moved.headers["location"] == f"{UI}/"  # bob may no longer see it
        assert task_id not in (await bob.get(f"{UI}/")).text
        assert (await bob.get(f"{UI}/tasks/{task_id}")).status_code == 403
    async with _signed_in(app, "carol") as carol:
        assert f'href="{UI}/tasks/{task_id}"' in (await carol.get(f"{UI}/")).text
        page = await _page(carol, task_id)
        assert '<dd id="task-assignee">carol</dd>' in page
        assert _audit_rows(page)[-1][1:] == ["bob", "Reassigned", "to carol; reason: bob is on leave"]


async def test_reassign_is_offered_to_the_assignee_and_admins_only(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "review", {})
    async with _signed_in(app, "carol") as carol:  # a candidate who has not claimed it
        assert 'id="reassign-heading"' not in await _page(carol, task_id)
        refused = await _act(carol, task_id, "reassign", assignee="bob", reason="yours")
        assert refused.status_code == 403
        assert "only an admin may reassign" in refused.text
    async with _signed_in(app, "admin") as admin:
        assert 'id="reassign-heading"' in await _page(admin, task_id)
        moved = await _act(admin, task_id, "reassign", group="finance", reason="money matters")
        assert moved.status_code == 303
        assert moved.headers["location"] == f"{UI}/tasks/{task_id}"  # an admin still sees it
    assert (await engine.get_task(task_id)).assignee_group == "finance"


async def test_an_action_without_the_csrf_token_is_refused(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "review", {})
    async with _signed_in(app, "bob") as client:
        for action, data in (("claim", {}), ("comment", {"text": "hi"})):
            response = await client.post(f"{UI}/tasks/{task_id}/{action}", data=data, follow_redirects=False)
            assert response.status_code == 403, action
    assert (await engine.get_task(task_id)).claimed_by is None
    assert [e.action for e in await engine.task_audit(task_id)] == ["created"]


async def test_an_action_on_a_completed_task_shows_a_409_message(app_engine: Any) -> None:
    app, engine = app_engine
    task_id = await _task_id(engine, "expense", {"who": "bob"})
    async with _signed_in(app, "bob") as client:
        page = await _page(client, task_id)
        done = await client.post(
            f"{UI}/tasks/{task_id}", data={"ok": "true", "_csrf_token": _csrf(page)}, follow_redirects=False
        )
        assert done.status_code == 303
        page = await _page(client, task_id)
        assert "This task is completed (by bob)." in page
        assert f'action="{UI}/tasks/{task_id}/reassign"' not in page
        for action, data in (("claim", {}), ("unclaim", {}), ("reassign", {"assignee": "carol", "reason": "late"})):
            refused = await _act(client, task_id, action, **data)
            assert refused.status_code == 409, action
            assert '<div class="form-errors" role="alert" id="task-notice">' in refused.text
            assert "is completed and cannot be" in refused.text
        again = await client.post(
            f"{UI}/tasks/{task_id}", data={"ok": "true", "_csrf_token": _csrf(page)}, follow_redirects=False
        )
        assert again.status_code == 409
        # A finished task still takes comments (a note for the record).
        assert (await _act(client, task_id, "comment", text="paid")).status_code == 303
        assert (await client.post(f"{UI}/tasks/{task_id}/nope", data={"_csrf_token": _csrf(page)})).status_code == 404
    assert (await engine.get_task(task_id)).completed_by == "bob"


async def test_a_trusted_back_office_comments_as_anonymous_and_cannot_claim() -> None:
    engine = _engine()
    task_id = await _task_id(engine, "review", {})
    app = Litestar(plugins=[WorkflowWebPlugin(engine=engine)])  # no user provider
    async with AsyncTestClient(app) as client:
        page = await _page(client, task_id)
        assert f'action="{UI}/tasks/{task_id}/claim"' not in page
        assert "<fieldset disabled" not in page
        # No sign-in, so no CSRF middleware: the forms post without a token.
        commented = await client.post(f"{UI}/tasks/{task_id}/comment", data={"text": "checked"}, follow_redirects=False)
        assert commented.status_code == 303
        refused = await client.post(f"{UI}/tasks/{task_id}/claim")
        assert refused.status_code == 403
        assert "a claim needs a signed-in user" in refused.text
        assert [(e.action, e.actor) for e in await engine.task_audit(task_id)][-1] == ("commented", "anonymous")
    await engine.close()
