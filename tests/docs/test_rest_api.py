"""The REST API page: rendered at build time from the real app's OpenAPI schema."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType, SimpleNamespace

import pytest

from tests.docs.conftest import DOCS


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_rest_api_hook", DOCS / "_hooks" / "rest_api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    return _hook()


@pytest.fixture(scope="module")
def schema(hook: ModuleType) -> dict:
    return hook.openapi_schema()


def test_every_operation_of_the_app_has_a_section(hook: ModuleType, schema: dict) -> None:
    page = hook.render(schema)
    operations = [(m.upper(), p) for p, item in schema["paths"].items() for m in item if m in hook._METHODS]
    assert ("POST", "/workflows/tasks/{task_id}/complete") in operations
    for method, path in operations:
        assert f"### `{method} {path}`" in page
    assert "/workflows/ui" not in page  # the HTML inbox is no REST API


def test_every_schema_link_has_a_target(hook: ModuleType, schema: dict) -> None:
    page = hook.render(schema)
    targets = set(re.findall(r"\{#(schema-[\w-]+)\}", page))
    links = set(re.findall(r"\]\(#(schema-[\w-]+)\)", page))
    assert "schema-completetaskrequest" in links
    assert links <= targets
    assert len(targets) == len(schema["components"]["schemas"])


def test_the_request_body_and_fields_are_shown(hook: ModuleType, schema: dict) -> None:
    page = hook.render(schema)
    section = page.split("### `POST /workflows/instances`", 1)[1].split("### ", 1)[0]
    assert "[StartInstanceRequest](#schema-startinstancerequest)" in section
    assert "| `Idempotency-Key` | header |" in section
    start = page.split("{#schema-startinstancerequest}", 1)[1].split("### ", 1)[0]
    assert "| `definition_name` | string | yes |" in start


def test_types_render_refs_unions_lists_and_enums(hook: ModuleType) -> None:
    assert hook.type_of({"$ref": "#/components/schemas/Task Out"}) == "[Task Out](#schema-task-out)"
    assert hook.type_of({"type": ["string", "null"], "format": "uuid"}) == "string (uuid) or null"
    assert hook.type_of({"type": "array", "items": {"type": "integer"}}) == "list of integer"
    assert hook.type_of({"enum": ["a", 1]}) == 'one of `"a"`, `1`'
    assert hook.type_of({"oneOf": [{"type": "string"}, {"type": "null"}]}) == "string or null"


def test_only_the_rest_api_page_is_rewritten(hook: ModuleType) -> None:
    other = SimpleNamespace(file=SimpleNamespace(src_uri="web.md"))
    assert hook.on_page_markdown(f"text {hook.MARKER}", page=other, config=None, files=None).endswith(hook.MARKER)
    page = SimpleNamespace(file=SimpleNamespace(src_uri=hook.PAGE))
    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("no marker here", page=page, config=None, files=None)
    rendered = hook.on_page_markdown((DOCS / hook.PAGE).read_text(), page=page, config=None, files=None)
    assert hook.MARKER not in rendered
    assert "### `GET /workflows/definitions`" in rendered


def test_the_published_schema_is_the_apps(hook: ModuleType, schema: dict) -> None:
    assert json.loads(hook._built_schema()) == schema
    assert schema["paths"]["/workflows/signals"]["post"]["tags"] == ["flowstar"]
