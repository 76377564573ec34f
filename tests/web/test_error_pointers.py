"""Pointers of request validation errors: they name the member that is wrong, missing or unknown."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.web.conftest import PREFIX

Client = AsyncTestClient[Litestar]


async def _errors(client: Client, body: object) -> list[dict[str, str]]:
    response = await client.post(f"{PREFIX}/instances", json=body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["status_code"] == 400
    return list(payload["errors"])


async def test_a_missing_member_points_at_that_member(client: Client) -> None:
    (error,) = await _errors(client, {"input_data": {}})
    assert error["pointer"] == "/definition_name"
    assert "definition_name" in error["message"]


async def test_an_unknown_member_points_at_that_member(client: Client) -> None:
    (error,) = await _errors(client, {"definition_name": "expense_approval", "colour": "blue"})
    assert error["pointer"] == "/colour"


async def test_a_body_of_the_wrong_type_points_at_the_root(client: Client) -> None:
    (error,) = await _errors(client, [1, 2])
    assert error["pointer"] == ""


async def test_a_wrongly_typed_member_keeps_its_pointer(client: Client) -> None:
    (error,) = await _errors(client, {"definition_name": "expense_approval", "input_data": [1]})
    assert error["pointer"] == "/input_data"


async def test_a_query_parameter_error_points_at_the_parameter(client: Client) -> None:
    response = await client.get(f"{PREFIX}/tasks", params={"limit": "0"})
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["/limit"]
