"""MkDocs hook: the REST API page, rendered from the OpenAPI schema of the real application.

The schema is not copied into the docs: every build asks a ``Litestar`` app carrying
``WorkflowWebPlugin`` for its ``openapi_schema``, so the page cannot drift from the routes.
``rest-api.md`` holds the prose and a ``<!-- openapi -->`` marker that the rendered
operations and schemas replace; the schema itself is published as ``openapi.json`` beside the
page, for tools that read it.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from typing import Any

__all__ = ["MARKER", "PAGE", "SCHEMA_FILE", "on_files", "on_page_markdown", "openapi_schema", "render", "type_of"]

PAGE = "rest-api.md"
MARKER = "<!-- openapi -->"
SCHEMA_FILE = "openapi.json"
_METHODS = ("get", "post", "put", "patch", "delete")
_REF = "#/components/schemas/"


def openapi_schema(path_prefix: str = "/workflows") -> dict[str, Any]:
    """The OpenAPI document of an app that mounts the REST API (the HTML inbox left out)."""
    from litestar import Litestar
    from litestar.serialization import encode_json

    from flowstar import LocalExecutionEngine, WorkflowRegistry
    from flowstar.web import WorkflowWebPlugin

    plugin = WorkflowWebPlugin(
        path_prefix=path_prefix, engine=LocalExecutionEngine(WorkflowRegistry()), enable_ui=False
    )
    app = Litestar(plugins=[plugin])
    # Litestar's encoder turns the examples' Structs and dates into JSON, as /schema does.
    schema: dict[str, Any] = json.loads(encode_json(app.openapi_schema.to_schema()))
    return schema


def _cell(text: Any) -> str:
    """Text that fits in one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name).lower()


def type_of(schema: dict[str, Any]) -> str:
    """A short Markdown rendering of a JSON Schema's type, linking named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF)
        return f"[{name}](#{_anchor(name)})"
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        return " or ".join(type_of(option) for option in options)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(type_of({**schema, "type": one}) for one in kind)
    return _simple_type(kind, schema)


def _simple_type(kind: str, schema: dict[str, Any]) -> str:
    if kind == "array":
        return f"list of {type_of(schema.get('items', {}))}"
    if "format" in schema and kind != "null":
        return f"{kind} ({schema['format']})"
    return kind


def _parameters(operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    if not params:
        return []
    described = any(p.get("description") for p in params)
    header = "| parameter | in | type | required |" + (" description |" if described else "")
    lines = [header, "|---" * header.count(" |") + "|"]
    for p in params:
        required = "yes" if p.get("required") else "no"
        row = f"| `{p['name']}` | {p['in']} | {_cell(type_of(p.get('schema', {})))} | {required} |"
        lines.append(row + (f" {_cell(p.get('description', ''))} |" if described else ""))
    return [*lines, ""]


def _body(operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    return [f"Request body (`{media}`): {type_of(body.get('schema', {}))}" for media, body in content.items()] + (
        [""] if content else []
    )


def _responses(operation: dict[str, Any]) -> list[str]:
    lines = ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        bodies = [type_of(body.get("schema", {})) for body in response.get("content", {}).values()]
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {_cell(', '.join(bodies))} |")
    return [*lines, ""]


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    for key in ("summary", "description"):
        if operation.get(key):
            lines += [operation[key].strip(), ""]
    return lines + _parameters(operation) + _body(operation) + _responses(operation)


def _group(path: str, prefix: str) -> str:
    """The resource a path belongs to: its first segment under the prefix."""
    rest = path.removeprefix(prefix).strip("/")
    return rest.split("/", 1)[0] or "root"


def _schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name} {{#{_anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {type_of(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required |", "|---|---|---|"]
    for field, spec in properties.items():
        lines.append(f"| `{field}` | {_cell(type_of(spec))} | {'yes' if field in required else 'no'} |")
    return [*lines, ""]


def render(schema: dict[str, Any], prefix: str = "/workflows") -> str:
    """Markdown for every operation (grouped by resource) and every named schema."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                groups[_group(path, prefix)] += _operation(path, method, item[method])
    lines: list[str] = []
    for group, body in groups.items():
        lines += [f"## {group.capitalize()} {{#routes-{group}}}", "", *body]
    lines += ["## Schemas", ""]
    for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
        lines += _schema_section(name, component)
    return "\n".join(lines)


@functools.cache
def _built_schema() -> str:
    """The schema as JSON text, built once per build (the page and the file share it)."""
    return json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker of the REST API page with the rendered schema."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} has no {MARKER} marker for the rendered schema")
    return markdown.replace(MARKER, render(json.loads(_built_schema())))


def on_files(files: Any, config: Any) -> Any:
    """Add ``openapi.json`` to the site, so that the page can link it."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, SCHEMA_FILE, content=_built_schema()))
    return files
