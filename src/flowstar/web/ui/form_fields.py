"""A step's JSON Schema read as a tree of form fields (pure: no I/O, no web framework).

Rendering (``forms.render_form``) and reading a post back (``forms.parse_form``) both walk
this tree, so what is shown and what is read never disagree. Field names are the JSON paths
the engine's ``FormValidationError.field_errors`` uses ("address/city", "items/0/qty"), so an
error lands on the field it is about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENUM_RADIO_LIMIT", "TEXTAREA_LENGTH", "Field", "Option", "build_fields", "field_id"]

# A string that may be longer than this is edited in a textarea.
TEXTAREA_LENGTH = 200
# An enum with at most this many choices is shown as radio buttons, else as a select.
ENUM_RADIO_LIMIT = 4

_STRING_FORMATS = {"date": "date", "date-time": "datetime", "email": "email"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Option:
    """One choice of an enum: ``key`` is what the form posts, ``value`` the JSON value."""

    key: str
    label: str
    value: Any


@dataclass
class Field:
    """One form field (or fieldset) for a schema node.

    Attributes:
        kind: text, textarea, date, datetime, email, number, integer, boolean, select, radio,
            checkboxes (array of enum), lines (array of strings/numbers, one per line),
            objects (array of objects, repeated fieldsets), object (fieldset), json (any
            other schema: a JSON textarea).
        path: the JSON path ("a/b/0/c"), also the HTML name.
        required: listed in its parent's ``required``.
        attrs: HTML validation attributes (min, max, minlength, maxlength, pattern, step).
        item_kind: for ``lines``: number, integer or text.
        children: the properties of an object (or of one item of ``objects``).
        min_items: for ``objects``: the fewest rows to show.
    """

    kind: str
    path: str
    name: str
    label: str
    help: str | None = None
    required: bool = False
    default: Any = None
    attrs: dict[str, str] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    item_kind: str = "text"
    children: list[Field] = field(default_factory=list)
    min_items: int = 0

    def children_at(self, path: str) -> list[Field]:
        """The children placed under ``path`` (an object's own path, or one row of an array)."""
        return [child._moved(f"{path}/{child.name}") for child in self.children]

    def _moved(self, path: str) -> Field:
        moved = Field(**{**self.__dict__, "path": path})
        moved.children = [child._moved(f"{path}/{child.name}") for child in self.children]
        return moved


def field_id(path: str) -> str:
    """The HTML id of the field at ``path`` (letters, digits, ``-`` and ``_`` only)."""
    return "f-" + _ID_UNSAFE.sub("-", path.replace("/", "--"))


def build_fields(schema: Mapping[str, Any] | None) -> list[Field]:
    """The fields of an object schema's properties, in their declared order.

    A schema that is not an object with properties yields no fields (the caller then offers
    a JSON textarea for the whole value).
    """
    if not schema or _type_of(schema) != "object":
        return []
    return _properties(schema, "")


def _properties(schema: Mapping[str, Any], base: str) -> list[Field]:
    required = set(schema.get("required") or ())
    props = schema.get("properties") or {}
    return [
        _field(name, sub, f"{base}/{name}" if base else name, name in required)
        for name, sub in props.items()
        if isinstance(sub, Mapping)
    ]


def _type_of(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        # ["string", "null"]: the form edits the non-null type; empty means left out.
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "enum" in schema:
        return "enum"
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _field(name: str, schema: Mapping[str, Any], path: str, required: bool) -> Field:
    label = str(schema.get("title") or name.replace("_", " ").capitalize())
    help_text = schema.get("description")
    base = Field(
        kind="json",
        path=path,
        name=name,
        label=label,
        help=str(help_text) if help_text else None,
        required=required,
        default=schema.get("default"),
    )
    kind = _type_of(schema)
    if "enum" in schema and isinstance(schema["enum"], list):
        base.options = _options(schema["enum"])
        base.kind = "radio" if len(base.options) <= ENUM_RADIO_LIMIT else "select"
    elif kind == "string":
        _string_field(base, schema)
    elif kind in ("number", "integer"):
        base.kind = kind
        base.attrs = _number_attrs(schema, kind)
    elif kind == "boolean":
        base.kind = "boolean"
    elif kind == "object":
        base.kind = "object"
        base.children = _properties(schema, path)
    elif kind == "array":
        _array_field(base, schema)
    return base


def _options(values: list[Any]) -> list[Option]:
    options = []
    for value in values:
        key = value if isinstance(value, str) else json.dumps(value)
        options.append(Option(key=key, label=key, value=value))
    return options


def _string_field(base: Field, schema: Mapping[str, Any]) -> None:
    fmt = schema.get("format")
    max_length = schema.get("maxLength")
    if fmt in _STRING_FORMATS:
        base.kind = _STRING_FORMATS[fmt]
    elif schema.get("x-widget") == "textarea" or (isinstance(max_length, int) and max_length > TEXTAREA_LENGTH):
        base.kind = "textarea"
    else:
        base.kind = "text"
    for keyword, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
        if isinstance(schema.get(keyword), int):
            base.attrs[attr] = str(schema[keyword])
    if isinstance(schema.get("pattern"), str) and base.kind == "text":
        base.attrs["pattern"] = schema["pattern"]


def _number_attrs(schema: Mapping[str, Any], kind: str) -> dict[str, str]:
    attrs = {"step": "1" if kind == "integer" else "any"}
    for keyword, attr in (("minimum", "min"), ("maximum", "max")):
        value = schema.get(keyword)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = str(value)
    return attrs


def _array_field(base: Field, schema: Mapping[str, Any]) -> None:
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return  # stays a JSON textarea
    item_type = _type_of(items)
    if "enum" in items and isinstance(items["enum"], list):
        base.kind = "checkboxes"
        base.options = _options(items["enum"])
    elif item_type in ("string", "number", "integer"):
        base.kind = "lines"
        base.item_kind = "text" if item_type == "string" else item_type
    elif item_type == "object":
        base.kind = "objects"
        base.children = _properties(items, "")
        min_items = schema.get("minItems")
        base.min_items = min_items if isinstance(min_items, int) else 0
