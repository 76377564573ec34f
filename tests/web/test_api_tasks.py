"""The task routes over HTTP with signed-in users: audit trail, claims, comments, reassignment, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import linear
from tests.web.conftest import PREFIX, make_app, serving
from tests.web.test_auth import KEY, _bearer, _start_as

from flowstar import BaseHumanStep, WorkflowRegistry
from flowstar.web import JWTUserProvider

Client = AsyncTestClient[Litestar]
DECISION = {"output_data": {"decision": "approve"}}


@pytest.fixture
async def users_client() -> AsyncIterator[Client]:
    app, _ = make_app(user_provider=JWTUserProvider(KEY))
    async with AsyncTestClient(app) as c:
        yield c


async def _post(client: Client, task_id: str, action: str, user: str, body: Any = None) -> Any:
    return await client.post(f"{PREFIX}/tasks/{task_id}/{action}", json=body, headers=_bearer(user))


async def _audit(client: Client, task_id: str, user: str) -> Any:
    return await client.get(f"{PREFIX}/tasks/{task_id}/audit", headers=_bearer(user))


async def test_audit_lists_who_did_what_in_order(users_client: Client) -> None:
    _, task_id = await _start_as(users_client, "alice")
    assert (await _post(users_client, task_id, "claim", "bob")).json()["claimed_by"] == "bob"
    comment = await _post(users_client, task_id, "comments", "bob", {"text": "  receipts attached  "})
    assert comment.status_code == 201
    assert (comment.json()["action"], comment.json()["actor"]) == ("commented", "bob")
    moved = await _post(users_client, task_id, "reassign", "bob", {"assignee_id": "carol", "reason": "bob is away"})
    assert moved.status_code == 200
    assert (moved.json()["assignee_id"], moved.json()["claimed_by"]) == ("carol", None)
    assert (await _post(users_client, task_id, "complete", "carol", DECISION)).status_code == 200

    response = await _audit(users_client, task_id, "carol")
    assert response.status_code == 200
    entries = response.json()
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("created", None),
        ("claimed", "bob"),
        ("commented", "bob"),
        ("reassigned", "bob"),
        ("completed", "carol"),
    ]
    assert entries[2]["details"] == {"text": "receipts attached"}
    reassigned = entries[3]["details"]
    assert (reassigned["reason"], reassigned["old_assignee"], reassigned["new_assignee"]) == (
        "bob is away",
        "bob",
        "carol",
    )
    times = [e["at"] for e in entries]
    assert times == sorted(times)
    assert {e["task_id"] for e in entries} == {task_id}


async def test_audit_is_only_for_those_who_may_see_the_task(users_client: Client) -> None:
    _, task_id = await _start_as(users_client, "alice")
    assert (await _audit(users_client, task_id, "bob")).status_code == 200
    assert (await _audit(users_client, task_id, "admin")).status_code == 200
    denied = await _audit(users_client, task_id, "alice")
    assert denied.status_code == 403
    assert denied.json()["status_code"] == 403
    # Another tenant's task does not exist for the user; nor does an unknown or malformed id.
    assert (await _audit(users_client, task_id, "dave")).status_code == 404
    assert (await _audit(users_client, str(uuid4()), "bob")).status_code == 404
    assert (await _audit(users_client, "not-a-uuid", "bob")).status_code == 404
    assert (await users_client.get(f"{PREFIX}/tasks/{task_id}/audit")).status_code == 401


async def test_claim_conflicts_and_unclaim_rules(users_client: Client) -> None:
    _, task_id = await _start_as(users_client, "alice")
    not_claimed = await _post(users_client, task_id, "unclaim", "bob")
    assert not_claimed.status_code == 409
    assert "not claimed" in not_claimed.json()["detail"]
    assert (await _post(users_client, task_id, "claim", "bob")).status_code == 200
    # Claiming one's own claim again changes nothing; anybody else's claim is a conflict.
    assert (await _post(users_client, task_id, "claim", "bob")).status_code == 200
    taken = await _post(users_client, task_id, "claim", "admin")
    assert taken.status_code == 409
    assert "claimed by bob" in taken.json()["detail"]
    assert (await _post(users_client, task_id, "claim", "alice")).status_code == 403
    assert (await _post(users_client, task_id, "claim", "dave")).status_code == 404
    assert (await _post(users_client, task_id, "unclaim", "alice")).status_code == 403
    released = await _post(users_client, task_id, "unclaim", "admin")
    assert released.status_code == 200
    assert released.json()["claimed_by"] is None
    actions = [(e["action"], e["actor"]) for e in (await _audit(users_client, task_id, "bob")).json()]
    assert actions == [("created", None), ("claimed", "bob"), ("unclaimed", "admin")]


@pytest.mark.parametrize(
    ("action", "body", "pointer"),
    [
        ("comments", {"text": ""}, "/text"),
        ("comments", {"text": "   "}, "/text"),
        ("comments", {"text": "x" * 4001}, "/text"),
        ("comments", {}, "/text"),
        ("reassign", {"assignee_id": "carol", "reason": " \n "}, "/reason"),
    ],
)
async def test_blank_or_oversized_text_is_400_at_its_member(
    users_client: Client, action: str, body: dict[str, Any], pointer: str
) -> None:
    _, task_id = await _start_as(users_client, "alice")
    response = await _post(users_client, task_id, action, "bob", body)
    assert response.status_code == 400, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    # Nothing was recorded or changed.
    assert [e["action"] for e in (await _audit(users_client, task_id, "bob")).json()] == ["created"]


async def test_finished_tasks_refuse_claims_and_reassignment(users_client: Client) -> None:
    _, task_id = await _start_as(users_client, "alice")
    assert (await _post(users_client, task_id, "complete", "bob", DECISION)).status_code == 200
    for action, body in (("claim", None), ("unclaim", None), ("reassign", {"assignee_id": "carol"})):
        response = await _post(users_client, task_id, action, "bob", body)
        assert response.status_code == 409, action
        assert "completed" in response.json()["detail"], action


async def test_a_user_may_not_complete_as_someone_else(users_client: Client) -> None:
    _, task_id = await _start_as(users_client, "alice")
    response = await _post(users_client, task_id, "complete", "bob", {**DECISION, "completed_by": "carol"})
    assert response.status_code == 403
    task = (await users_client.get(f"{PREFIX}/tasks/{task_id}", headers=_bearer("bob"))).json()
    assert (task["status"], task["completed_by"]) == ("pending", None)


async def test_tasks_filter_by_minimum_priority() -> None:
    registry = WorkflowRegistry()
    registry.register_definition(linear("urgent", BaseHumanStep("fix", priority=90)))
    registry.register_definition(linear("later", BaseHumanStep("tidy", priority=10)))
    async with serving(registry) as (client, engine):
        urgent = await engine.start_workflow("urgent")
        await engine.start_workflow("later")
        high = await client.get(f"{PREFIX}/tasks", params={"min_priority": 50})
        assert high.status_code == 200, high.text
        assert [t["instance_id"] for t in high.json()] == [str(urgent.id)]
        assert len((await client.get(f"{PREFIX}/tasks")).json()) == 2
        bad = await client.get(f"{PREFIX}/tasks", params={"min_priority": "high"})
        assert bad.status_code == 400
        assert "min_priority" in bad.text
