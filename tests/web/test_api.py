"""The REST API on a trusted back end (no user provider): routes, errors, pages, webhooks."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.web.conftest import PREFIX

Client = AsyncTestClient[Litestar]


async def _start(client: Client, amount: int = 5000, **extra: Any) -> dict[str, Any]:
    body = {"definition_name": "expense_approval", "input_data": {"amount": amount, "manager": "bob"}, **extra}
    response = await client.post(f"{PREFIX}/instances", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _task_of(client: Client, instance_id: str) -> dict[str, Any]:
    response = await client.get(f"{PREFIX}/tasks", params={"instance_id": instance_id})
    assert response.status_code == 200
    (task,) = response.json()
    return dict(task)


async def test_definitions_list_detail_and_graph(client: Client) -> None:
    names = [d["name"] for d in (await client.get(f"{PREFIX}/definitions")).json()]
    assert "expense_approval" in names
    detail = (await client.get(f"{PREFIX}/definitions/expense_approval")).json()
    assert detail["initial_step"] == "submit_expense"
    graph = (await client.get(f"{PREFIX}/definitions/expense_approval/graph")).json()
    assert graph["mermaid"].startswith("graph TD")
    assert {"source": "submit_expense", "target": "amount_router", "condition": None} in graph["edges"]
    assert "manager_approval" in {n["name"] for n in graph["nodes"]}
    missing = await client.get(f"{PREFIX}/definitions/nope")
    assert missing.status_code == 404
    assert missing.json()["status_code"] == 404


async def test_instance_detail_has_history_and_task_has_form_schema(client: Client) -> None:
    started = await _start(client)
    detail = (await client.get(f"{PREFIX}/instances/{started['id']}")).json()
    assert detail["status"] == "waiting"
    assert [r["step_name"] for r in detail["history"]][:2] == ["submit_expense", "amount_router"]
    task = await _task_of(client, started["id"])
    full = (await client.get(f"{PREFIX}/tasks/{task['id']}")).json()
    assert full["form_schema"]["required"] == ["decision"]


async def test_invalid_form_data_is_422_with_one_pointer_per_field(client: Client) -> None:
    task = await _task_of(client, (await _start(client))["id"])
    response = await client.post(
        f"{PREFIX}/tasks/{task['id']}/complete", json={"output_data": {"decision": "maybe"}, "completed_by": "bob"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["status_code"] == 422
    assert [e["pointer"] for e in body["errors"]] == ["/decision"]
    # Nothing was half-written: the task is still open.
    assert (await client.get(f"{PREFIX}/tasks/{task['id']}")).json()["status"] == "pending"


async def test_completing_twice_is_409(client: Client) -> None:
    started = await _start(client)
    task = await _task_of(client, started["id"])
    url = f"{PREFIX}/tasks/{task['id']}/complete"
    ok = await client.post(url, json={"output_data": {"decision": "approve"}, "completed_by": "bob"})
    assert ok.status_code == 200
    assert ok.json()["current_step"] != "manager_approval"
    again = await client.post(url, json={"output_data": {"decision": "approve"}, "completed_by": "bob"})
    assert again.status_code == 409


async def test_unknown_and_malformed_ids_are_404(client: Client) -> None:
    for path in (f"/tasks/{uuid4()}", "/tasks/not-a-uuid", f"/instances/{uuid4()}", "/instances/xyz"):
        response = await client.get(PREFIX + path)
        assert response.status_code == 404, path
        assert "detail" in response.json()
    response = await client.post(f"{PREFIX}/tasks/xyz/complete", json={"output_data": {}})
    assert response.status_code == 404
    for action, body in (("claim", None), ("unclaim", None), ("reassign", {}), ("comments", {"text": "x"})):
        response = await client.post(f"{PREFIX}/tasks/xyz/{action}", json=body)
        assert response.status_code == 404, action
        assert response.json()["detail"] == "no task with id xyz", action
    assert (await client.get(f"{PREFIX}/tasks/xyz/audit")).status_code == 404


async def test_malformed_json_is_400_and_oversized_body_413() -> None:
    from tests.web.conftest import make_app

    app, _ = make_app(request_max_body_size=1000)
    async with AsyncTestClient(app) as client:
        bad = await client.post(
            f"{PREFIX}/instances", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert bad.json()["status_code"] == 400
        big = {"definition_name": "expense_approval", "input_data": {"blob": "x" * 5000}}
        assert (await client.post(f"{PREFIX}/instances", json=big)).status_code == 413


async def test_idempotency_key_returns_the_same_instance(client: Client) -> None:
    first = await _start(client, idempotency_key="order-1")
    second = await _start(client, idempotency_key="order-1")
    assert first["id"] == second["id"]
    body = {"definition_name": "expense_approval", "input_data": {"amount": 5000}}
    by_header = await client.post(f"{PREFIX}/instances", json=body, headers={"Idempotency-Key": "order-1"})
    assert by_header.json()["id"] == first["id"]
    other = await _start(client, idempotency_key="order-2")
    assert other["id"] != first["id"]


async def test_lists_are_cursor_pages_with_a_link_header(client: Client) -> None:
    ids = {(await _start(client))["id"] for _ in range(3)}
    first = await client.get(f"{PREFIX}/tasks", params={"limit": 2, "status": "pending"})
    assert len(first.json()) == 2
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    second = await client.get(link[1 : link.index(">")])
    assert "link" not in second.headers
    seen = {t["instance_id"] for t in first.json() + second.json()}
    assert seen == ids
    instances = await client.get(f"{PREFIX}/instances", params={"limit": 2, "workflow": "expense_approval"})
    assert len(instances.json()) == 2
    assert "link" in instances.headers
    bad = await client.get(f"{PREFIX}/tasks", params={"cursor": "garbage"})
    assert bad.status_code == 422


async def test_cancel_and_reassign(client: Client) -> None:
    started = await _start(client)
    task = await _task_of(client, started["id"])
    moved = await client.post(
        f"{PREFIX}/tasks/{task['id']}/reassign", json={"assignee_id": "carol", "reason": "bob is away"}
    )
    assert moved.status_code == 200
    assert moved.json()["assignee_id"] == "carol"
    # The reason reaches the audit trail; a trusted back end acts as nobody in particular.
    *_, entry = (await client.get(f"{PREFIX}/tasks/{task['id']}/audit")).json()
    assert (entry["action"], entry["actor"], entry["details"]["reason"]) == ("reassigned", None, "bob is away")
    canceled = await client.post(f"{PREFIX}/instances/{started['id']}/cancel", json={"reason": "duplicate"})
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"


async def test_webhook_callback_is_single_use_and_exact(client: Client) -> None:
    started = (await client.post(f"{PREFIX}/instances", json={"definition_name": "pay", "input_data": {}})).json()
    assert started["status"] == "waiting"
    (callback,) = (await client.get(f"{PREFIX}/instances/{started['id']}/webhooks")).json()
    url = callback["url"].replace("http://testserver.local", "")
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert (await client.post(forged, json={"paid": True})).status_code == 404
    done = await client.post(url, json={"paid": True})
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    assert done.json()["data"]["paid"] is True
    assert (await client.post(url, json={"paid": True})).status_code == 404


async def test_completing_without_completed_by_records_nobody(client: Client) -> None:
    task = await _task_of(client, (await _start(client))["id"])
    done = await client.post(f"{PREFIX}/tasks/{task['id']}/complete", json={"output_data": {"decision": "approve"}})
    assert done.status_code == 200
    completed = (await client.get(f"{PREFIX}/tasks/{task['id']}")).json()
    assert completed["status"] == "completed"
    assert completed["completed_by"] is None
    *_, entry = (await client.get(f"{PREFIX}/tasks/{task['id']}/audit")).json()
    assert (entry["action"], entry["actor"]) == ("completed", None)


async def test_completed_by_in_the_body_is_the_completer(client: Client) -> None:
    task = await _task_of(client, (await _start(client))["id"])
    body = {"output_data": {"decision": "approve"}, "completed_by": "bob"}
    assert (await client.post(f"{PREFIX}/tasks/{task['id']}/complete", json=body)).status_code == 200
    assert (await client.get(f"{PREFIX}/tasks/{task['id']}")).json()["completed_by"] == "bob"


async def test_claims_need_a_signed_in_user(client: Client) -> None:
    task = await _task_of(client, (await _start(client))["id"])
    response = await client.post(f"{PREFIX}/tasks/{task['id']}/claim")
    assert response.status_code == 400
    assert "signed-in user" in response.json()["detail"]
    assert (await client.post(f"{PREFIX}/tasks/{uuid4()}/claim")).status_code == 404
    # Unclaiming an unclaimed task is a conflict, said in words.
    unclaim = await client.post(f"{PREFIX}/tasks/{task['id']}/unclaim")
    assert unclaim.status_code == 409
    assert unclaim.json()["detail"].endswith("is not claimed")


async def test_a_trusted_comment_is_in_the_audit_trail(client: Client) -> None:
    task = await _task_of(client, (await _start(client))["id"])
    comment = await client.post(f"{PREFIX}/tasks/{task['id']}/comments", json={"text": "checked"})
    assert comment.status_code == 201
    audit = (await client.get(f"{PREFIX}/tasks/{task['id']}/audit")).json()
    assert [(e["action"], e["details"]) for e in audit] == [("created", {}), ("commented", {"text": "checked"})]
    assert audit[1]["id"] == comment.json()["id"]
    assert (await client.post(f"{PREFIX}/tasks/{uuid4()}/comments", json={"text": "x"})).status_code == 404
