"""The JSON rule: context values are JSON values, refused when they are not, never changed later."""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

import pytest

from flowstar import ContextSerializationError, StepStatus, ValidationError, WorkflowContext
from flowstar.model.context import MAX_DEPTH, json_data, json_object, step_context
from flowstar.model.state import HistoryEntry


def _nested_lists(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _nested_dicts(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (math.nan, "nan is not a JSON number"),
        (math.inf, "inf is not a JSON number"),
        (-math.inf, "-inf is not a JSON number"),
        (b"\x00\x01", "bytes have no JSON form"),
        (bytearray(b"x"), "bytes have no JSON form"),
        ({1, 2}, "a set has no JSON form"),
        (frozenset({1}), "a set has no JSON form"),
        ({1: "a"}, "object keys must be strings, got 1"),
        pytest.param(10**5000, "Exceeds the limit (4300 digits)", id="int of 5001 digits"),
        pytest.param([-(10**5000)], "Exceeds the limit (4300 digits)", id="nested int of 5001 digits"),
        (object(), "object has no JSON form"),
        (MappingProxyType({"a": 1}), "mappingproxy has no JSON form"),
    ],
)
def test_values_without_one_json_form_are_refused(value: Any, detail: str) -> None:
    with pytest.raises(ContextSerializationError) as info:
        json_data(value, "context value for 'v'")
    assert str(info.value).startswith("context value for 'v' is not JSON-serializable")
    assert detail in str(info.value)


def test_the_message_names_the_path_inside_the_value() -> None:
    with pytest.raises(ContextSerializationError, match=r"a set has no JSON form .* at \['items'\]\[1\]\['tags'\]"):
        json_data({"items": [{"tags": ["a"]}, {"tags": {"b"}}]}, "value")
    with pytest.raises(ContextSerializationError, match=r"nan is not a JSON number at \['totals'\]\[0\]"):
        json_data({"totals": (math.nan, 1.0)}, "value")


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ((1, (2, 3)), [1, [2, 3]]),
        ({"t": ("a",)}, {"t": ["a"]}),
        (Colour.RED, "red"),
        ({"level": Level.HIGH}, {"level": 3}),
        (2**200, 2**200),
        ([-(2**70)], [-(2**70)]),
        (-0.0, -0.0),
        ({"when": datetime(2030, 1, 1, tzinfo=UTC)}, {"when": "2030-01-01T00:00:00Z"}),
        (UUID(int=5), "00000000-0000-0000-0000-000000000005"),
    ],
)
def test_values_with_one_json_form_are_converted_at_once(value: Any, stored: Any) -> None:
    assert json_data(value) == stored
    context = WorkflowContext()
    context.set("v", value)
    assert context.data["v"] == stored
    assert context.changes["v"] == stored


def test_plain_json_comes_back_as_an_equal_copy() -> None:
    value = {"a": [1, 2.5, "x", None, True, {"b": []}]}
    copied = json_data(value)
    assert copied == value
    assert copied is not value
    copied["a"].append(3)
    assert value["a"] == [1, 2.5, "x", None, True, {"b": []}]


def test_depth_up_to_the_limit_is_accepted() -> None:
    assert json_data(_nested_lists(MAX_DEPTH)) == _nested_lists(MAX_DEPTH)
    assert json_data(_nested_dicts(MAX_DEPTH)) == _nested_dicts(MAX_DEPTH)
    for too_deep in (_nested_lists(MAX_DEPTH + 1), _nested_dicts(MAX_DEPTH + 1)):
        with pytest.raises(ValidationError, match=f"nests deeper than {MAX_DEPTH} levels"):
            json_data(too_deep)


def test_long_values_are_measured_by_their_nesting_not_their_length() -> None:
    brackets = {"text": "[{" * 500 + '\\"]}"' * 100, "rows": [{"id": i, "tags": ["a"]} for i in range(500)]}
    assert json_data(brackets) == brackets
    padded = [_nested_lists(MAX_DEPTH - 1), "x" * 1000]
    assert json_data(padded) == padded
    with pytest.raises(ValidationError, match=f"nests deeper than {MAX_DEPTH} levels at \\[0\\]"):
        json_data([_nested_lists(MAX_DEPTH), "x" * 1000])
    with pytest.raises(ContextSerializationError, match=r"nan is not a JSON number at \[499\]\['v'\]"):
        json_data([{"v": 1.0}] * 499 + [{"v": math.nan}])


@pytest.mark.parametrize("make", [_nested_lists, _nested_dicts])
def test_a_100000_level_value_is_a_validation_error_not_a_recursion_error(make: Any) -> None:
    deep = make(100_000)
    context = WorkflowContext(data={"keep": 1})
    with pytest.raises(ValidationError, match=f"context value for 'deep' nests deeper than {MAX_DEPTH} levels") as info:
        context.set("deep", deep)
    assert not isinstance(info.value, ContextSerializationError)
    assert len(str(info.value)) < 200  # the path is shortened, not 128 segments long
    assert context.data == {"keep": 1}
    with pytest.raises(ValidationError, match=f"start data 'deep' nests deeper than {MAX_DEPTH} levels"):
        json_object({"deep": deep}, "start data")


def test_json_object_checks_a_payload_entering_through_the_api() -> None:
    assert json_object({"a": (1, 2), "when": datetime(2030, 1, 1, tzinfo=UTC)}, "form data") == {
        "a": [1, 2],
        "when": "2030-01-01T00:00:00Z",
    }
    assert json_object(MappingProxyType({"a": 1}), "form data") == {"a": 1}
    assert json_object({}, "form data") == {}
    with pytest.raises(ValidationError, match="webhook payload must be a JSON object, got list"):
        json_object([1], "webhook payload")
    with pytest.raises(ContextSerializationError, match="form data: keys must be strings, got 1"):
        json_object({1: "a"}, "form data")
    with pytest.raises(ContextSerializationError, match=r"start data 'v' is not JSON-serializable \(float\): nan"):
        json_object({"v": math.nan}, "start data")
    with pytest.raises(ContextSerializationError, match="start data 'raw' is not JSON-serializable"):
        json_object({"raw": b"\x00\x01"}, "start data")
    with pytest.raises(ValidationError, match="start data is 21 bytes; the limit is 20"):
        json_object({"text": "x" * 10}, "start data", max_bytes=20)
    assert json_object({"text": "x" * 10}, "start data", max_bytes=21) == {"text": "x" * 10}


def test_update_refuses_everything_when_one_value_is_refused() -> None:
    context = WorkflowContext()
    with pytest.raises(ContextSerializationError, match="context value for 'b'"):
        context.update({"a": 1, "b": math.inf})
    assert context.data == {}
    assert context.changes == {}


def test_reserved_names_read_the_instance_unless_the_data_has_them() -> None:
    ids = (UUID(int=1), UUID(int=2))
    at = datetime(2030, 1, 1, tzinfo=UTC)
    context = step_context(*ids, {"n": 1}, {}, "notify", at, "ann", "acme", workflow_name="orders")
    assert context.get("_workflow_name") == "orders"
    assert context.get("_instance_id") == str(ids[1])
    assert context.get("_current_step") == "notify"
    assert (context.get("_user_id"), context.get("_tenant_id")) == ("ann", "acme")
    assert context.get("_other", "default") == "default"
    context.set("_workflow_name", "overridden")
    assert context.get("_workflow_name") == "overridden"
    assert context.workflow_name == "orders"


def test_step_history_is_built_from_the_history_lines() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    lines = [HistoryEntry("submit", "succeeded", 1, at), HistoryEntry("fetch", "failed", 2, at, "bob")]
    context = step_context(UUID(int=1), UUID(int=2), {}, {}, "next", at, None, None, history=lines)
    assert [(h.step_name, h.status, h.attempt, h.completed_at) for h in context.step_history] == [
        ("submit", StepStatus.SUCCEEDED, 1, at),
        ("fetch", StepStatus.FAILED, 2, at),
    ]
    assert context.step_history is context.step_history  # built once
    empty = step_context(UUID(int=1), UUID(int=2), {}, {}, "first", at, None, None)
    assert empty.step_history == []
    branch = context.branch()
    assert branch.step_history == context.step_history
    assert branch.workflow_name == context.workflow_name
