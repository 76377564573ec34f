"""JSON-Schema forms: fields per keyword, HTML attributes, escaping, and the post read back."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flowstar.model.errors import FormValidationError
from flowstar.model.steps import BaseHumanStep
from flowstar.web.ui.forms import build_fields, form_values, parse_form, read_post, render_form

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["amount", "email", "kind"],
    "properties": {
        "amount": {"type": "number", "minimum": 0, "maximum": 10000, "description": "In euros"},
        "count": {"type": "integer", "default": 1},
        "email": {"type": "string", "format": "email"},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
        "notes": {"type": "string", "maxLength": 2000},
        "urgent": {"type": "boolean"},
        "kind": {"enum": ["travel", "meals"]},
        "office": {"type": "string", "enum": ["a", "b", "c", "d", "e"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "array", "items": {"type": "integer"}},
        "colors": {"type": "array", "items": {"enum": ["red", "blue"]}},
        "address": {
            "type": "object",
            "title": "Postal address",
            "required": ["city"],
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["item"],
                "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
        "extra": {"anyOf": [{"type": "string"}, {"type": "object"}]},
    },
}


def html(values: dict[str, list[str]] | None = None, errors: dict[str, list[str]] | None = None) -> str:
    return str(render_form(build_fields(SCHEMA), values, errors))


def tag(page: str, field_id: str) -> str:
    """The opening tag of the control with ``field_id``."""
    match = re.search(rf'<(input|textarea|select)[^>]*id="{field_id}"[^>]*>', page)
    assert match, field_id
    return match.group(0)


def test_kinds_per_keyword() -> None:
    kinds = {f.name: f.kind for f in build_fields(SCHEMA)}
    assert kinds == {
        "amount": "number",
        "count": "integer",
        "email": "email",
        "day": "date",
        "at": "datetime",
        "code": "text",
        "notes": "textarea",
        "urgent": "boolean",
        "kind": "radio",
        "office": "select",
        "tags": "lines",
        "scores": "lines",
        "colors": "checkboxes",
        "address": "object",
        "lines": "objects",
        "extra": "json",
    }


def test_html_attributes_and_labels() -> None:
    page = html(form_values(build_fields(SCHEMA)))
    amount = tag(page, "f-amount")
    assert 'type="number"' in amount
    assert 'min="0"' in amount
    assert 'max="10000"' in amount
    assert 'step="any"' in amount
    assert " required" in amount
    assert 'aria-describedby="f-amount-help"' in amount
    assert '<p class="help" id="f-amount-help">In euros</p>' in page
    assert 'step="1"' in tag(page, "f-count")
    assert 'value="1"' in tag(page, "f-count")
    assert 'type="email"' in tag(page, "f-email")
    assert 'type="date"' in tag(page, "f-day")
    assert 'type="datetime-local"' in tag(page, "f-at")
    code = tag(page, "f-code")
    assert 'pattern="^[A-Z]{3}$"' in code
    assert 'minlength="3"' in code
    assert 'maxlength="3"' in code
    assert tag(page, "f-notes").startswith("<textarea")
    assert tag(page, "f-office").startswith("<select")
    assert 'type="radio"' in tag(page, "f-kind-0")
    assert " required" in tag(page, "f-kind-0")
    assert 'type="checkbox"' in tag(page, "f-colors-1")
    # nested: the required city is not enforced by the browser in an optional fieldset
    assert 'name="address/city"' in tag(page, "f-address--city")
    assert " required" not in tag(page, "f-address--city")
    assert "<legend>Postal address</legend>" in page
    # one spare row for an array of objects
    assert 'name="lines/0/item"' in tag(page, "f-lines--0--item")
    # every control has a label pointing at it
    for control_id in re.findall(r'<(?:input|textarea|select)[^>]*id="([^"]+)"', page):
        assert f'<label for="{control_id}">' in page, control_id


def test_values_are_escaped() -> None:
    evil = '"><script>alert(1)</script>'
    page = html({"code": [evil], "notes": [evil]})
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    schema = {"type": "object", "properties": {"x": {"type": "string", "title": "<b>x</b>", "description": "<i>"}}}
    page = str(render_form(build_fields(schema)))
    assert "<b>" not in page
    assert "<i>" not in page


def test_parse_types_the_post() -> None:
    form = {
        "amount": ["12.5"],
        "count": ["3"],
        "email": ["a@example.com"],
        "day": ["2026-12-04"],
        "at": ["2026-12-04T10:30"],
        "code": [""],
        "notes": ["line 1\nline 2"],
        "urgent": ["true"],
        "kind": ["meals"],
        "office": ["c"],
        "tags": ["x\n\n y \n"],
        "scores": ["1\n2"],
        "colors": ["red", "blue"],
        "address/city": ["Lyon"],
        "address/zip": [""],
        "lines/0/item": ["pen"],
        "lines/0/qty": ["2"],
        "lines/1/item": [""],
        "lines/1/qty": [""],
        "extra": ['{"a": 1}'],
    }
    data, errors = parse_form(build_fields(SCHEMA), form)
    assert errors == {}
    assert data == {
        "amount": 12.5,
        "count": 3,
        "email": "a@example.com",
        "day": "2026-12-04",
        "at": "2026-12-04T10:30:00Z",
        "notes": "line 1\nline 2",
        "urgent": True,
        "kind": "meals",
        "office": "c",
        "tags": ["x", "y"],
        "scores": [1, 2],
        "colors": ["red", "blue"],
        "address": {"city": "Lyon"},
        "lines": [{"item": "pen", "qty": 2}],
        "extra": {"a": 1},
    }
    BaseHumanStep(name="s", form_schema=SCHEMA).validate_form(data)


def test_parse_leaves_out_empty_optional_fields() -> None:
    data, errors = parse_form(build_fields(SCHEMA), {"amount": ["0"], "address/city": [""]})
    assert errors == {}
    assert data == {"amount": 0, "urgent": False}  # an unticked checkbox is False
    assert "address" not in data
    assert "tags" not in data
    assert "lines" not in data


def test_parse_reports_unreadable_text() -> None:
    form = {"amount": ["lots"], "count": ["1.5"], "scores": ["1\nx"], "kind": ["other"], "extra": ["{"]}
    _, errors = parse_form(build_fields(SCHEMA), form)
    assert errors == {
        "amount": ["must be a number"],
        "count": ["must be a whole number"],
        "scores": ["must be a whole number"],
        "kind": ["not one of the choices"],
        "extra": ["must be valid JSON"],
    }
    _, errors = parse_form(build_fields(SCHEMA), {"amount": ["nan"]})
    assert errors == {"amount": ["must be a number"]}


def test_round_trip() -> None:
    fields = build_fields(SCHEMA)
    data = {
        "amount": 7,
        "count": 2,
        "email": "b@example.com",
        "at": "2026-01-02T03:04:00Z",
        "urgent": True,
        "kind": "travel",
        "tags": ["a", "b"],
        "colors": ["blue"],
        "address": {"city": "Oslo", "zip": "0150"},
        "lines": [{"item": "a", "qty": 1}, {"item": "b"}],
        "extra": [1, 2],
    }
    parsed, errors = parse_form(fields, form_values(fields, data))
    assert errors == {}
    assert parsed == data


def test_engine_errors_shown_inline_with_input_kept() -> None:
    fields = build_fields(SCHEMA)
    posted = {"amount": ["-5"], "email": ["not-an-email"], "lines/0/qty": ["4"]}
    data, errors = parse_form(fields, posted)
    assert errors == {}
    try:
        BaseHumanStep(name="s", form_schema=SCHEMA).validate_form(data)
    except FormValidationError as exc:
        field_errors = exc.field_errors
    else:
        raise AssertionError("invalid data accepted")
    assert "amount" in field_errors
    assert "kind" in field_errors
    assert "lines/0/item" in field_errors
    page = str(render_form(fields, posted, {**field_errors, "": ["whole form"]}))
    amount = tag(page, "f-amount")
    assert 'value="-5"' in amount
    assert 'aria-invalid="true"' in amount
    assert 'aria-describedby="f-amount-help f-amount-error"' in amount
    assert '<p class="field-error" id="f-amount-error">' in page
    assert '<p class="field-error" id="f-kind-error">this field is required</p>' in page
    assert '<p class="field-error" id="f-lines--0--item-error">this field is required</p>' in page
    assert 'value="4"' in tag(page, "f-lines--0--qty")
    assert page.startswith('<div class="form-errors" role="alert"><ul><li>whole form</li>')


def test_no_schema_no_fields() -> None:
    assert build_fields(None) == []
    assert build_fields({"type": "string"}) == []


def test_an_error_lands_on_the_row_it_names_when_an_earlier_row_was_left_empty() -> None:
    fields = build_fields(SCHEMA)
    # Row 0 left blank, row 1 missing its required item, row 2 complete, and the blank spare.
    posted = {
        "amount": ["1"],
        "lines/0/item": [""],
        "lines/0/qty": [""],
        "lines/1/item": [""],
        "lines/1/qty": ["4"],
        "lines/2/item": ["pen"],
        "lines/2/qty": ["1"],
        "lines/3/item": [""],
        "lines/3/qty": [""],
    }
    data, errors, shown = read_post(SCHEMA, posted)
    assert errors == {}
    assert data["lines"] == [{"qty": 4}, {"item": "pen", "qty": 1}]
    with pytest.raises(FormValidationError) as info:
        BaseHumanStep(name="s", form_schema=SCHEMA).validate_form(data)
    assert "lines/0/item" in info.value.field_errors
    # The page numbers its rows as the data does: the error is on the row holding qty 4.
    assert {k: v for k, v in shown.items() if k.startswith("lines/")} == {
        "lines/0/item": [""],
        "lines/0/qty": ["4"],
        "lines/1/item": ["pen"],
        "lines/1/qty": ["1"],
    }
    page = str(render_form(fields, shown, info.value.field_errors))
    assert 'value="4"' in tag(page, "f-lines--0--qty")
    assert 'aria-invalid="true"' in tag(page, "f-lines--0--item")


def test_a_form_posted_again_keeps_one_spare_row() -> None:
    fields = build_fields(SCHEMA)
    posted = {"lines/0/item": ["pen"], "lines/1/item": [""], "lines/1/qty": [""]}
    for _ in range(3):  # each failed post shows the form again, which is posted again
        _, _, posted = read_post(SCHEMA, posted)
        page = str(render_form(fields, posted))
        posted = {k: v for k, v in posted.items() if k.startswith("lines/")}
        rows = set(re.findall(r'name="lines/(\d+)/item"', page))
        assert rows == {"0", "1"}
        posted["lines/1/item"] = [""]


def test_rows_of_a_nested_list_are_numbered_like_the_data() -> None:
    part = {"type": "object", "properties": {"n": {"type": "string"}}}
    order = {"type": "object", "properties": {"ref": {"type": "string"}, "parts": {"type": "array", "items": part}}}
    schema = {"type": "object", "properties": {"orders": {"type": "array", "items": order}}}
    posted = {
        "orders/0/ref": [""],
        "orders/1/ref": ["A"],
        "orders/1/parts/0/n": [""],
        "orders/1/parts/5/n": ["x"],
    }
    data, errors, shown = read_post(schema, posted)
    assert errors == {}
    assert data == {"orders": [{"ref": "A", "parts": [{"n": "x"}]}]}
    assert shown == {"orders/0/ref": ["A"], "orders/0/parts/0/n": ["x"]}
