"""Bulk operations over HTTP: submit (202), progress, the dry run, admins only, clear 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Set, linear
from tests.web.conftest import PREFIX, serving
from tests.web.test_auth import KEY, _bearer

from flowstar import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from flowstar.model.waits import SignalStep
from flowstar.web import JWTUserProvider

Client = AsyncTestClient[Litestar]


async def _finished(client: Client, engine: LocalExecutionEngine, operation_id: str) -> Any:
    """Wait for an operation the app runs: on the app's own event loop (the client's portal)."""
    return await asyncio.to_thread(client.blocking_portal.call, engine.bulk.wait, operation_id)


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(linear("parked", SignalStep("hold"), Set("done")))
    return registry


@pytest.fixture
async def back_end() -> AsyncIterator[tuple[Client, LocalExecutionEngine]]:
    async with serving(_registry()) as pair:
        yield pair


@pytest.fixture
async def with_users() -> AsyncIterator[tuple[Client, LocalExecutionEngine]]:
    async with serving(_registry(), user_provider=JWTUserProvider(KEY)) as pair:
        yield pair


async def test_a_bulk_cancel_over_http(back_end: Any) -> None:
    client, engine = back_end
    ids = [str((await engine.start_workflow("parked")).id) for _ in range(7)]
    body = {"kind": "cancel", "filter": {"workflow": "parked"}, "reason": "cleanup"}
    counted = await client.post(f"{PREFIX}/bulk/count", json=body)
    assert (counted.status_code, counted.json()) == (200, {"count": 7})
    assert {(await engine.get_instance(i)).status for i in ids} == {WorkflowStatus.WAITING}

    submitted = await client.post(f"{PREFIX}/bulk", json=body)
    assert submitted.status_code == 202, submitted.text
    operation = submitted.json()
    assert (operation["kind"], operation["total"]) == ("cancel", 7)
    await _finished(client, engine, operation["id"])
    progress = await client.get(f"{PREFIX}/bulk/{operation['id']}")
    assert progress.status_code == 200
    assert {k: progress.json()[k] for k in ("status", "acted", "skipped", "failed")} == {
        "status": "completed",
        "acted": 7,
        "skipped": 0,
        "failed": 0,
    }
    assert {(await engine.get_instance(i)).status for i in ids} == {WorkflowStatus.CANCELED}


async def test_a_re_sent_request_with_its_key_is_the_same_operation(back_end: Any) -> None:
    client, engine = back_end
    await engine.start_workflow("parked")
    body = {"kind": "cancel", "idempotency_key": "nightly-2026-12-04"}
    first = (await client.post(f"{PREFIX}/bulk", json=body)).json()
    await _finished(client, engine, first["id"])
    again = await client.post(f"{PREFIX}/bulk", json=body)
    assert again.status_code == 202
    assert again.json()["id"] == first["id"]
    assert again.json()["acted"] == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"kind": "reassign"}, 422, "needs to_user or to_group"),
        ({"kind": "explode"}, 400, "kind"),
        ({"kind": "cancel", "filter": {"statuses": ["lost"]}}, 422, "unknown status"),
        ({"kind": "cancel", "filter": {"colour": "red"}}, 400, "colour"),
    ],
)
async def test_bad_bulk_requests_get_a_clear_4xx(back_end: Any, body: dict[str, Any], status: int, detail: str) -> None:
    client, _engine = back_end
    answer = await client.post(f"{PREFIX}/bulk", json=body)
    assert answer.status_code == status, answer.text
    assert detail in answer.text


async def test_an_unknown_operation_is_404(back_end: Any) -> None:
    client, _engine = back_end
    for operation_id in ("0" * 32, "nope"):
        answer = await client.get(f"{PREFIX}/bulk/{operation_id}")
        assert answer.status_code == 404, answer.text


async def test_bulk_routes_need_an_admin_and_stay_in_the_tenant(with_users: Any) -> None:
    client, engine = with_users
    ours = str((await engine.start_workflow("parked", tenant_id="acme")).id)
    theirs = str((await engine.start_workflow("parked", tenant_id="globex")).id)
    body = {"kind": "cancel", "tenant_id": "globex"}  # a tenant in the body is ignored for users
    refused = await client.post(f"{PREFIX}/bulk", json=body, headers=_bearer("bob"))
    assert refused.status_code == 403, refused.text
    assert (await client.post(f"{PREFIX}/bulk/count", json=body, headers=_bearer("bob"))).status_code == 403

    submitted = await client.post(f"{PREFIX}/bulk", json=body, headers=_bearer("admin"))
    assert submitted.status_code == 202, submitted.text
    await _finished(client, engine, submitted.json()["id"])
    assert (await engine.get_instance(ours)).status is WorkflowStatus.CANCELED
    assert (await engine.get_instance(theirs)).status is WorkflowStatus.WAITING
    hidden = await client.get(f"{PREFIX}/bulk/{submitted.json()['id']}", headers=_bearer("dave"))
    assert hidden.status_code == 403  # dave is no admin
