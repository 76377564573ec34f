"""The start page of a definition with an input schema: a generated form, inline errors with
the input kept, and typed initial data; a definition without one keeps the JSON textarea."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from tests.unit.helpers import Set, linear
from tests.web.ui.test_instance_pages_list import UI, signed_in
from tests.web.ui.test_pages import _csrf

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.web import UserDirectory, WorkflowWebPlugin

INPUT_SCHEMA = {
    "type": "object",
    "required": ["employee", "days"],
    "properties": {
        "employee": {"type": "string", "title": "Employee", "description": "Who is going on leave"},
        "days": {"type": "integer", "title": "Days", "minimum": 1},
        "kind": {"enum": ["paid", "unpaid"], "title": "Kind", "default": "paid"},
    },
}


@pytest.fixture
async def app_engine() -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    registry = WorkflowRegistry()
    leave = linear("leave", Set("granted", ok=True), input_schema=INPUT_SCHEMA)
    registry.register_definition(leave)
    registry.register_definition(linear("free", Set("done")))
    engine = LocalExecutionEngine(registry, clock=ManualClock())
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="f" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


async def test_a_definition_with_an_input_schema_gets_a_generated_form(app_engine: Any) -> None:
    app, engine = app_engine
    async with signed_in(app, "alice") as client:
        page = await client.get(f"{UI}/start/leave")
        assert page.status_code == 200
        assert 'name="_json"' not in page.text
        assert '<label for="f-employee">Employee' in page.text
        assert '<p class="help" id="f-employee-help">Who is going on leave</p>' in page.text
        assert 'type="number"' in page.text
        assert 'value="paid" checked' in page.text  # the schema's default
        token = _csrf(page.text)

        bad = await client.post(
            f"{UI}/start/leave", data={"employee": "", "days": "0", "kind": "unpaid", "_csrf_token": token}
        )
        assert bad.status_code == 422
        assert '<p class="field-error" id="f-employee-error">this field is required</p>' in bad.text
        assert 'id="f-days-error"' in bad.text  # below the minimum
        assert 'aria-invalid="true"' in bad.text
        assert 'value="0"' in bad.text  # the input is kept
        assert 'value="unpaid" checked' in bad.text
        unreadable = await client.post(
            f"{UI}/start/leave", data={"employee": "Eve", "days": "two", "_csrf_token": token}
        )
        assert unreadable.status_code == 422
        assert 'id="f-days-error"' in unreadable.text
        assert 'value="Eve"' in unreadable.text
        assert (await engine.find_instances()).items == []

        good = await client.post(
            f"{UI}/start/leave",
            data={"employee": "Eve", "days": "3", "kind": "unpaid", "_csrf_token": token},
            follow_redirects=False,
        )
        assert good.status_code == 303
    (instance,) = (await engine.find_instances()).items
    assert good.headers["location"] == f"{UI}/instances/{instance.id}"
    assert instance.data == {"employee": "Eve", "days": 3, "kind": "unpaid", "ok": True}
    assert (instance.tenant_id, instance.created_by) == ("acme", "alice")


async def test_a_definition_without_one_keeps_the_json_textarea(app_engine: Any) -> None:
    app, engine = app_engine
    async with signed_in(app, "alice") as client:
        page = await client.get(f"{UI}/start/free")
        assert '<label for="f--json">Initial data (JSON object)</label>' in page.text
        response = await client.post(
            f"{UI}/start/free", data={"_json": '{"n": 1}', "_csrf_token": _csrf(page.text)}, follow_redirects=False
        )
        assert response.status_code == 303
    (instance,) = (await engine.find_instances()).items
    assert instance.data == {"n": 1}


async def test_json_nested_too_deeply_to_parse_is_shown_again_as_unreadable(app_engine: Any) -> None:
    app, engine = app_engine
    deep = "[" * 5000 + "]" * 5000
    async with signed_in(app, "alice") as client:
        page = await client.get(f"{UI}/start/free")
        response = await client.post(f"{UI}/start/free", data={"_json": deep, "_csrf_token": _csrf(page.text)})
        assert response.status_code == 422
        assert "the data is not valid JSON" in response.text
    assert (await engine.find_instances()).items == []
