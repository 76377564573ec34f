"""HTML forms from a step's JSON Schema, and the posted form read back as typed JSON.

Pure functions (no I/O, no web framework): ``form_values`` turns JSON data (or the schema's
defaults) into the strings a form shows, ``render_form`` writes the fields as HTML (every
value escaped, a label on each field, help and errors tied to it with
``aria-describedby``), and ``parse_form`` reads a post back per the schema (numbers,
booleans from checkboxes, one line per array item, empty optional fields left out). A post
that fails is shown again from the posted strings, so the user's input is kept.

Date-time fields use the browser's ``datetime-local`` input, which has no time zone: the
value is read (and shown) as UTC.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from markupsafe import Markup, escape

from flowstar.web.ui.form_fields import Field, build_fields, field_id

__all__ = [
    "JSON_FIELD",
    "FormValues",
    "build_fields",
    "form_context",
    "form_values",
    "Posted",
    "compact_rows",
    "parse_form",
    "read_post",
    "render_form",
]

# The strings a form holds, keyed by field name (a field may post several values).
FormValues = dict[str, list[str]]

# The textarea holding the whole data as JSON, for a schema that yields no fields.
JSON_FIELD = "_json"
_INT = re.compile(r"^[+-]?\d+$")
_ROW = re.compile(r"^(\d+)/")


# --- JSON data -> form strings -------------------------------------------------------------


def form_values(fields: list[Field], data: Mapping[str, Any] | None = None) -> FormValues:
    """The form strings showing ``data`` (the schema's defaults where a field has none)."""
    out: FormValues = {}
    for f in fields:
        if data is not None and f.name in data:
            _put(out, f, data[f.name])
        elif f.default is not None:
            _put(out, f, f.default)
        elif f.kind == "object":
            _put(out, f, {})
    return out


def _put(out: FormValues, f: Field, value: Any) -> None:
    if f.kind == "object":
        out.update(form_values(f.children_at(f.path), value if isinstance(value, Mapping) else {}))
    elif f.kind == "objects":
        for i, item in enumerate(value if isinstance(value, list) else []):
            if isinstance(item, Mapping):
                out.update(form_values(f.children_at(f"{f.path}/{i}"), item))
    elif f.kind == "boolean":
        out[f.path] = ["true"] if value is True else []
    elif f.kind in ("radio", "select", "checkboxes"):
        chosen = value if f.kind == "checkboxes" and isinstance(value, list) else [value]
        out[f.path] = [o.key for o in f.options if o.value in chosen]
    elif f.kind == "lines":
        items = value if isinstance(value, list) else [value]
        out[f.path] = ["\n".join(v if isinstance(v, str) else json.dumps(v) for v in items)]
    elif f.kind == "json":
        out[f.path] = [json.dumps(value, indent=2)]
    elif f.kind == "datetime" and isinstance(value, str):
        out[f.path] = [value[:16]]
    else:
        out[f.path] = [value if isinstance(value, str) else json.dumps(value)]


# --- form strings -> JSON data ---------------------------------------------------------------


def parse_form(fields: list[Field], form: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Read a posted form back into JSON data, typed per the fields.

    Returns:
        The data (empty optional fields left out) and the messages of fields whose text
        could not be read (a number that is not one, JSON that does not parse), keyed by
        field path like the engine's ``FormValidationError.field_errors``.
    """
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in fields:
        value, present = _read(f, form, errors)
        if present:
            data[f.name] = value
    return data, errors


def _read(f: Field, form: Mapping[str, list[str]], errors: dict[str, list[str]]) -> tuple[Any, bool]:
    """The value of one field and whether it goes into the data."""
    if f.kind in ("object", "objects", "boolean", "checkboxes"):
        return _read_compound(f, form, errors)
    raw = (form.get(f.path) or [""])[0]
    if f.kind == "lines":
        items = [line.strip() for line in raw.splitlines() if line.strip()]
        values = [_scalar(f.item_kind, item, f.path, errors) for item in items]
        return values, f.required or bool(values)
    if raw.strip() == "":
        return None, False
    return _text_value(f, raw, errors), True


def _read_compound(f: Field, form: Mapping[str, list[str]], errors: dict[str, list[str]]) -> tuple[Any, bool]:
    if f.kind == "object":
        value, nested = parse_form(f.children_at(f.path), form)
        _merge(errors, nested)
        return value, f.required or _filled(value)
    if f.kind == "objects":
        rows = _read_rows(f, form, errors)
        return rows, f.required or bool(rows)
    if f.kind == "boolean":
        return "true" in form.get(f.path, []), True
    keys = set(form.get(f.path, []))  # checkboxes
    chosen = [o.value for o in f.options if o.key in keys]
    return chosen, f.required or bool(chosen)


def _text_value(f: Field, raw: str, errors: dict[str, list[str]]) -> Any:
    if f.kind in ("radio", "select"):
        for option in f.options:
            if option.key == raw:
                return option.value
        errors.setdefault(f.path, []).append("not one of the choices")
        return raw
    if f.kind == "json":
        try:
            return _json(raw)
        except ValueError:
            errors.setdefault(f.path, []).append("must be valid JSON")
            return raw
    if f.kind == "datetime":
        # datetime-local posts "YYYY-MM-DDTHH:MM[:SS]" with no zone: read it as UTC.
        text = raw.strip()
        return text + (":00Z" if len(text) == 16 else "Z") if len(text) in (16, 19) else text
    return _scalar(f.kind, raw.strip() if f.kind != "textarea" else raw, f.path, errors)


def _scalar(kind: str, text: str, path: str, errors: dict[str, list[str]]) -> Any:
    if kind == "integer":
        if _INT.match(text):
            return int(text)
        errors.setdefault(path, []).append("must be a whole number")
        return text
    if kind == "number":
        if _INT.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
        errors.setdefault(path, []).append("must be a number")
        return text
    return text


def _read_rows(f: Field, form: Mapping[str, list[str]], errors: dict[str, list[str]]) -> list[Any]:
    rows = []
    for i in _row_indexes(f.path, form):
        row, nested = parse_form(f.children_at(f"{f.path}/{i}"), form)
        if _filled(row):
            _merge(errors, nested)
            rows.append(row)
    return rows


def _row_indexes(path: str, form: Iterable[str]) -> list[int]:
    prefix = f"{path}/"
    found = set()
    for key in form:
        if key.startswith(prefix):
            match = _ROW.match(key[len(prefix) :])
            if match:
                found.add(int(match.group(1)))
    return sorted(found)


def compact_rows(fields: list[Field], values: Mapping[str, list[str]]) -> FormValues:
    """The posted strings with the empty rows of every list of objects dropped and the
    others numbered from 0, so that row ``i`` on the page is item ``i`` of the data: the
    engine's error paths ("/items/1/qty") then land on the row they name, and a form posted
    again does not grow by its blank spare row."""
    out = dict(values)
    for f in fields:
        _compact(f, out)
    return out


def _compact(f: Field, values: FormValues) -> None:
    if f.kind == "object":
        for child in f.children_at(f.path):
            _compact(child, values)
        return
    if f.kind != "objects":
        return
    prefix = f"{f.path}/"
    rows: dict[int, dict[str, list[str]]] = {}
    for key in [k for k in values if k.startswith(prefix)]:
        match = _ROW.match(key[len(prefix) :])
        if match:
            rows.setdefault(int(match.group(1)), {})[key[len(prefix) + match.end() :]] = values.pop(key)
    kept = 0
    for index in sorted(rows):
        base = f"{prefix}{kept}/"
        values.update({base + rest: strings for rest, strings in rows[index].items()})
        children = f.children_at(f"{f.path}/{kept}")
        for child in children:
            _compact(child, values)
        if _filled(parse_form(children, values)[0]):
            kept += 1
        else:
            for key in [k for k in values if k.startswith(base)]:
                del values[key]


def _filled(value: dict[str, Any]) -> bool:
    """Whether a nested object holds anything but unticked checkboxes."""
    return any(v is not False for v in value.values())


def _merge(errors: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for path, messages in more.items():
        errors.setdefault(path, []).extend(messages)


# --- HTML ------------------------------------------------------------------------------------


def render_form(
    fields: list[Field],
    values: Mapping[str, list[str]] | None = None,
    errors: Mapping[str, list[str]] | None = None,
) -> Markup:
    """The HTML of the fields (no ``<form>`` element, no buttons), values and errors shown.

    Errors whose path names no field (the whole form's, ``""``) are listed first.
    """
    shown: set[str] = set()
    writer = _Writer(values or {}, errors or {}, shown)
    body = "".join(writer.field(f, enforce=True) for f in fields)
    loose = [m for path, msgs in (errors or {}).items() if path not in shown for m in msgs]
    head = ""
    if loose:
        items = "".join(f"<li>{escape(m)}</li>" for m in loose)
        head = f'<div class="form-errors" role="alert"><ul>{items}</ul></div>'
    # Every value and label above went through escape(); the rest is our own markup.
    return Markup(head + body)  # noqa: S704


class _Writer:
    """Writes fields; notes which error paths it showed."""

    def __init__(self, values: Mapping[str, list[str]], errors: Mapping[str, list[str]], shown: set[str]) -> None:
        self.values = values
        self.errors = errors
        self.shown = shown

    def field(self, f: Field, *, enforce: bool) -> str:
        # ``required`` is only enforced by the browser when every enclosing object is
        # required too: an optional fieldset may be left empty as a whole.
        need = enforce and f.required
        if f.kind == "object":
            inner = "".join(self.field(c, enforce=need) for c in f.children_at(f.path))
            return self._fieldset(f, inner, "object")
        if f.kind == "objects":
            return self._fieldset(f, self._rows(f), "objects")
        if f.kind in ("radio", "checkboxes"):
            return self._fieldset(f, self._choices(f, need), f.kind)
        if f.kind == "boolean":
            return self._boolean(f)
        return self._wrap(f, self._control(f, need))

    def _rows(self, f: Field) -> str:
        count = max([*(i + 1 for i in _row_indexes(f.path, self.values)), f.min_items]) + 1
        parts = []
        for i in range(count):
            inner = "".join(self.field(c, enforce=False) for c in f.children_at(f"{f.path}/{i}"))
            parts.append(f'<fieldset class="row"><legend>{escape(f.label)} {i + 1}</legend>{inner}</fieldset>')
        return "".join(parts)

    def _choices(self, f: Field, need: bool) -> str:
        chosen = set(self.values.get(f.path, []))
        kind = "radio" if f.kind == "radio" else "checkbox"
        parts = []
        for n, option in enumerate(f.options):
            oid = f"{field_id(f.path)}-{n}"
            checked = " checked" if option.key in chosen else ""
            req = " required" if need and kind == "radio" else ""
            parts.append(
                f'<div class="choice"><input type="{kind}" id="{oid}" name="{escape(f.path)}" '
                f'value="{escape(option.key)}"{checked}{req}{self._described(f)}>'
                f'<label for="{oid}">{escape(option.label)}</label></div>'
            )
        return "".join(parts)

    def _boolean(self, f: Field) -> str:
        fid = field_id(f.path)
        checked = " checked" if "true" in self.values.get(f.path, []) else ""
        control = (
            f'<input type="checkbox" id="{fid}" name="{escape(f.path)}" value="true"'
            f"{checked}{self._described(f)}>"
            f'<label for="{fid}">{escape(f.label)}</label>'
        )
        return f'<div class="field boolean{self._error_class(f)}">{control}{self._notes(f)}</div>'

    def _control(self, f: Field, need: bool) -> str:
        fid = field_id(f.path)
        value = (self.values.get(f.path) or [""])[0]
        common = f'id="{fid}" name="{escape(f.path)}"{" required" if need else ""}'
        common += "".join(f' {k}="{escape(v)}"' for k, v in f.attrs.items()) + self._described(f)
        if f.kind in ("textarea", "lines", "json"):
            rows = 6 if f.kind == "json" else 4
            return f'<textarea {common} rows="{rows}">{escape(value)}</textarea>'
        if f.kind == "select":
            options = ['<option value="">(choose)</option>']
            for option in f.options:
                selected = " selected" if option.key == value else ""
                options.append(f'<option value="{escape(option.key)}"{selected}>{escape(option.label)}</option>')
            return f"<select {common}>{''.join(options)}</select>"
        input_type = {
            "date": "date",
            "datetime": "datetime-local",
            "email": "email",
            "number": "number",
            "integer": "number",
        }.get(f.kind, "text")
        return f'<input type="{input_type}" {common} value="{escape(value)}">'

    def _wrap(self, f: Field, control: str) -> str:
        label = f'<label for="{field_id(f.path)}">{escape(f.label)}{self._star(f)}</label>'
        hint = ""
        if f.kind == "lines":
            hint = '<span class="hint">(one per line)</span>'
        return f'<div class="field {f.kind}{self._error_class(f)}">{label}{hint}{control}{self._notes(f)}</div>'

    def _fieldset(self, f: Field, inner: str, kind: str) -> str:
        legend = f"<legend>{escape(f.label)}{self._star(f)}</legend>"
        return (
            f'<fieldset class="field {kind}{self._error_class(f)}" id="{field_id(f.path)}"'
            f"{self._described(f)}>{legend}{self._notes(f)}{inner}</fieldset>"
        )

    def _star(self, f: Field) -> str:
        return ' <span class="required" aria-hidden="true">*</span>' if f.required else ""

    def _error_class(self, f: Field) -> str:
        return " has-error" if self.errors.get(f.path) else ""

    def _described(self, f: Field) -> str:
        fid = field_id(f.path)
        ids = [f"{fid}-help"] if f.help else []
        if self.errors.get(f.path):
            ids.append(f"{fid}-error")
        if not ids:
            return ""
        invalid = ' aria-invalid="true"' if self.errors.get(f.path) else ""
        return f' aria-describedby="{" ".join(ids)}"{invalid}'

    def _notes(self, f: Field) -> str:
        fid = field_id(f.path)
        out = f'<p class="help" id="{fid}-help">{escape(f.help)}</p>' if f.help else ""
        messages = self.errors.get(f.path)
        if messages:
            self.shown.add(f.path)
            text = "; ".join(str(escape(m)) for m in messages)
            out += f'<p class="field-error" id="{fid}-error">{text}</p>'
        return out


# --- a page's form, whatever the schema -------------------------------------------------------


def form_context(
    schema: Mapping[str, Any] | None,
    values: Mapping[str, list[str]] | None,
    errors: Mapping[str, list[str]],
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a page template needs to show the form: the rendered fields, or the JSON textarea.

    ``values`` are posted strings being shown again; None shows ``data`` (or defaults).
    """
    fields = build_fields(schema)
    shown = values if values is not None else form_values(fields, data)
    if fields:
        return {"form": render_form(fields, shown, errors), "json_form": False}
    default = json.dumps(dict(data), indent=2) if data else "{}"
    return {
        "form": "",
        "json_form": True,
        "json_text": (shown.get(JSON_FIELD) or [default])[0],
        "json_error": "; ".join(m for msgs in errors.values() for m in msgs),
    }


class Posted(NamedTuple):
    """A posted form read back: its data, the fields that could not be read, and the strings
    to show again (``compact_rows``: row ``i`` is item ``i`` of the data)."""

    data: dict[str, Any]
    errors: dict[str, list[str]]
    values: FormValues


def read_post(schema: Mapping[str, Any] | None, values: Mapping[str, list[str]]) -> Posted:
    """The posted data per ``schema`` (or from the JSON textarea) and the unreadable fields."""
    fields = build_fields(schema)
    if fields:
        shown = compact_rows(fields, values)
        return Posted(*parse_form(fields, shown), shown)
    shown = dict(values)
    try:
        data = _json((values.get(JSON_FIELD) or [""])[0].strip() or "{}")
    except ValueError:
        return Posted({}, {"": ["the data is not valid JSON"]}, shown)
    if not isinstance(data, dict):
        return Posted({}, {"": ["the data must be a JSON object"]}, shown)
    return Posted(data, {}, shown)


def _json(text: str) -> Any:
    """``json.loads``; text nested too deeply to parse is refused like any unreadable text."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
