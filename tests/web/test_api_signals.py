"""Signals, events and named actions over HTTP, with and without signed-in users."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Set, linear
from tests.web.conftest import PREFIX, serving
from tests.web.test_auth import KEY, _bearer

from flowstar import BaseHumanStep, LocalExecutionEngine, WorkflowContext, WorkflowRegistry, WorkflowStatus
from flowstar.model.commands import Complete
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.waits import EventStep, SignalStep
from flowstar.web import JWTUserProvider

Client = AsyncTestClient[Litestar]


class SubmitReview(BaseHumanStep):
    """The review action: its fields reach the body, which completes the workflow."""

    name = "await_review"
    action = "expense_submit_review"
    assignee = "bob"
    runs_on_completion = True
    form_schema = {
        "type": "object",
        "properties": {"reviewer_notes": {"type": "string"}, "priority": {"enum": ["low", "medium", "high"]}},
        "required": ["reviewer_notes", "priority"],
    }

    async def execute(self, context: WorkflowContext) -> Any:
        return Complete({"status": "reviewed"})


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(linear("approval", Set("ask"), SignalStep("approved"), Set("done")))
    registry.register_definition(linear("payment", EventStep("paid", event="payment_received"), Set("ship")))
    review = WorkflowDefinition(
        name="review", steps={"await_review": SubmitReview()}, initial_step="await_review", routing="commands"
    )
    registry.register_definition(review)
    return registry


@pytest.fixture
async def back_end() -> AsyncIterator[tuple[Client, LocalExecutionEngine]]:
    async with serving(_registry()) as pair:
        yield pair


@pytest.fixture
async def with_users() -> AsyncIterator[tuple[Client, LocalExecutionEngine]]:
    async with serving(_registry(), user_provider=JWTUserProvider(KEY)) as pair:
        yield pair


async def test_a_signal_over_http_resumes_the_instance(back_end: Any) -> None:
    client, engine = back_end
    instance = await engine.start_workflow("approval")
    sent = await client.post(f"{PREFIX}/signals", json={"name": "approved", "payload": {"by": "carol"}})
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"woken": 1}
    done = await engine.get_instance(instance.id)
    assert (done.status, done.context.data["by"]) == (WorkflowStatus.COMPLETED, "carol")


async def test_an_event_over_http_resumes_the_instance(back_end: Any) -> None:
    client, engine = back_end
    instance = await engine.start_workflow("payment")
    body = {"name": "payment_received", "entity_id": "order-9", "payload": {"amount": 12}}
    reported = await client.post(f"{PREFIX}/events", json=body)
    assert reported.status_code == 200, reported.text
    done = await engine.get_instance(instance.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.data["event_id"] == reported.json()["id"]


async def test_bad_signal_and_event_bodies_are_4xx(back_end: Any) -> None:
    client, _ = back_end
    assert (await client.post(f"{PREFIX}/signals", json={"name": ""})).status_code == 422
    assert (await client.post(f"{PREFIX}/signals", json={"payload": {}})).status_code == 400
    unknown = await client.post(
        f"{PREFIX}/signals", json={"name": "x", "instance_id": "00000000-0000-7000-8000-000000000000"}
    )
    assert unknown.status_code == 404
    naive = {"name": "e", "entity_id": "1", "at": "2030-01-01T00:00:00"}
    assert (await client.post(f"{PREFIX}/events", json=naive)).status_code == 422


async def test_only_an_admin_broadcasts_a_signal(with_users: Any) -> None:
    client, engine = with_users
    instance = await engine.start_workflow("approval", tenant_id="acme", created_by="alice")
    refused = await client.post(f"{PREFIX}/signals", json={"name": "approved"}, headers=_bearer("bob"))
    assert refused.status_code == 403
    other_tenant = await client.post(
        f"{PREFIX}/signals", json={"name": "approved", "instance_id": str(instance.id)}, headers=_bearer("dave")
    )
    assert other_tenant.status_code == 404
    mine = await client.post(
        f"{PREFIX}/signals", json={"name": "approved", "instance_id": str(instance.id)}, headers=_bearer("alice")
    )
    assert mine.json() == {"woken": 1}


async def test_a_named_action_completes_the_step(with_users: Any) -> None:
    client, engine = with_users
    instance = await engine.start_workflow("review", tenant_id="acme", created_by="alice")
    url = f"{PREFIX}/actions/expense_submit_review"
    fields = {"instance_id": str(instance.id), "reviewer_notes": "Approved", "priority": "high"}
    assert (await client.post(url, json=fields, headers=_bearer("carol"))).status_code == 403  # not carol's
    bad = await client.post(url, json={**fields, "priority": "urgent"}, headers=_bearer("bob"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/priority"
    done = await client.post(url, json=fields, headers=_bearer("bob"))
    assert done.status_code == 200, done.text
    finished = await engine.get_instance(instance.id)
    assert finished.status is WorkflowStatus.COMPLETED
    assert finished.context.data == {"reviewer_notes": "Approved", "priority": "high", "status": "reviewed"}
    again = await client.post(url, json=fields, headers=_bearer("bob"))
    assert again.status_code == 404  # no open step for the action any more
    assert (await client.post(f"{PREFIX}/actions/nope", json=fields, headers=_bearer("bob"))).status_code == 404
    malformed = await client.post(url, json={"reviewer_notes": "x"}, headers=_bearer("bob"))
    assert malformed.status_code == 400


async def test_a_named_action_on_another_tenants_instance_is_an_unknown_instance(with_users: Any) -> None:
    client, engine = with_users
    instance = await engine.start_workflow("review", tenant_id="acme", created_by="alice")
    (task,) = await engine.get_tasks(instance_id=instance.id)
    url = f"{PREFIX}/actions/expense_submit_review"
    unknown = await client.post(url, json={"instance_id": str(uuid.uuid4())}, headers=_bearer("dave"))
    answers = [
        await client.post(f"{PREFIX}/actions/{action}", json={"instance_id": str(instance.id)}, headers=_bearer("dave"))
        for action in ("guess", "expense_submit_review")
    ]
    # dave (globex) learns nothing: not that the instance exists, nor its actions or task id.
    for answer in answers:
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"no workflow instance with id {str(instance.id)!r}"
        assert task.id not in answer.text
    assert unknown.status_code == 404
    assert (await engine.get_task(task.id)).status.value == "pending"
