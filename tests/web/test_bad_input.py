"""Bad input over HTTP gets a 4xx with a clear JSON body, never a 500: times without a time
zone or out of range, priorities out of range, bodies nested too deeply, unknown members."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.web.conftest import PREFIX

Client = AsyncTestClient[Litestar]

NAIVE = "2020-01-01T00:00:00"
# Valid times whose UTC value is no Python datetime (year 0, year 10000).
TOO_EARLY = "0001-01-01T00:00:00+14:00"
TOO_LATE = "9999-12-31T23:59:00-14:00"


async def _started(client: Client) -> str:
    """An instance (and its open task) for the lists to compare against."""
    body = {"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}}
    started = await client.post(f"{PREFIX}/instances", json=body)
    assert started.status_code == 200, started.text
    return str(started.json()["id"])


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("path", "name"),
    [("/instances", "created_after"), ("/instances", "created_before"), ("/tasks", "due_before")],
)
@pytest.mark.parametrize(("value", "problem"), [(NAIVE, "needs a time zone"), (TOO_EARLY, "is out of range")])
async def test_a_time_filter_no_store_can_compare_is_a_422(
    client: Client, path: str, name: str, value: str, problem: str
) -> None:
    await _started(client)
    response = await client.get(f"{PREFIX}{path}", params={name: value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"{name} {problem}" + (" (add +00:00 or Z)" if value == NAIVE else "")
    assert (await client.get(f"{PREFIX}{path}", params={name: "2020-01-01T00:00:00Z"})).status_code == 200


async def test_a_due_date_beyond_year_9999_in_utc_is_a_422(client: Client) -> None:
    await _started(client)
    response = await client.get(f"{PREFIX}/tasks", params={"due_before": TOO_LATE})
    assert (response.status_code, response.json()["detail"]) == (422, "due_before is out of range")


@pytest.mark.parametrize("route", ["/bulk", "/bulk/count"])
async def test_a_bulk_filter_time_without_a_zone_is_refused_before_anything_runs(client: Client, route: str) -> None:
    instance_id = await _started(client)
    body = {"kind": "cancel", "filter": {"created_after": NAIVE}}
    response = await client.post(f"{PREFIX}{route}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "filter.created_after needs a time zone (add +00:00 or Z)"
    assert (await client.get(f"{PREFIX}/instances/{instance_id}")).json()["status"] == "waiting"


async def test_an_event_time_out_of_range_is_a_422(client: Client) -> None:
    response = await client.post(f"{PREFIX}/events", json={"name": "e", "entity_id": "1", "at": TOO_EARLY})
    assert (response.status_code, response.json()["detail"]) == (422, "the event's time is out of range")


@pytest.mark.parametrize("value", ["-1", "101", "9223372036854775808"])
async def test_min_priority_outside_the_priority_range_is_a_400_at_the_parameter(client: Client, value: str) -> None:
    response = await client.get(f"{PREFIX}/tasks", params={"min_priority": value})
    assert response.status_code == 400, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/min_priority"]
    assert (await client.get(f"{PREFIX}/tasks", params={"min_priority": "100"})).status_code == 200


async def test_a_body_nested_too_deeply_to_decode_is_a_400(client: Client) -> None:
    # Deeper than the JSON decoder goes: it gives up before the depth check (128) can.
    body = '{"name": "x", "payload": {"a": ' + "[" * 1200 + "1" + "]" * 1200 + "}}"
    response = await client.post(f"{PREFIX}/signals", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "the request nests deeper than 128 levels"
    within = await client.post(f"{PREFIX}/signals", json={"name": "x", "payload": {"a": _nested(10)}})
    assert within.status_code == 200, within.text


async def test_a_task_completion_with_an_unknown_member_is_refused_and_changes_nothing(client: Client) -> None:
    instance_id = await _started(client)
    (task,) = (await client.get(f"{PREFIX}/tasks", params={"instance_id": instance_id})).json()
    url = f"{PREFIX}/tasks/{task['id']}/complete"
    response = await client.post(url, json={"outputdata": {"decision": "approve"}})
    assert response.status_code == 400, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/outputdata"]
    assert (await client.get(f"{PREFIX}/tasks/{task['id']}")).json()["status"] == "pending"


async def test_an_empty_reassignment_reason_says_reason(client: Client) -> None:
    instance_id = await _started(client)
    (task,) = (await client.get(f"{PREFIX}/tasks", params={"instance_id": instance_id})).json()
    response = await client.post(f"{PREFIX}/tasks/{task['id']}/reassign", json={"assignee_id": "carol", "reason": " "})
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"pointer": "/reason", "message": "a reason needs some text"}]
