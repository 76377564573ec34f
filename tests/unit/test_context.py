"""The workflow context: JSON-only values, normalised when set, writes recorded as a diff."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest

from flowstar import (
    ContextSerializationError,
    StepStatus,
    ValidationError,
    WorkflowContext,
    WorkflowStatus,
)
from tests.unit.helpers import Fn, Set, linear


class Point(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class Money:
    amount: int
    currency: str


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), "2030-01-02T03:04:05Z"),
        (datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2030-01-02T03:04:05+02:00"),
        (date(2030, 1, 2), "2030-01-02"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (Decimal("1.10"), "1.10"),
        (Point(1, 2), {"x": 1, "y": 2}),
        (Money(5, "EUR"), {"amount": 5, "currency": "EUR"}),
        ((1, 2), [1, 2]),
        ({"pair": (1, (2, 3))}, {"pair": [1, [2, 3]]}),  # tuples become lists at once
        ({"nested": [datetime(2030, 1, 1, tzinfo=UTC)]}, {"nested": ["2030-01-01T00:00:00Z"]}),
        (None, None),
        ("text", "text"),
        (1.5, 1.5),
        (True, True),
    ],
)
def test_values_are_normalised_to_json_data_when_set(value: Any, stored: Any) -> None:
    context = WorkflowContext()
    context.set("key", value)
    assert context.get("key") == stored
    assert type(context.get("key")) is type(stored)
    assert context.changes == {"key": stored}
    assert msgspec.json.decode(msgspec.json.encode(context.data)) == {"key": stored}


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {"inner": object()},
        [1, lambda: 1],
        {(1, 2): "tuple key"},
        {1: "int key"},
        {3},
        float("nan"),
        b"\x00\x01",
    ],
)
def test_non_json_values_are_refused_at_set_time(value: Any) -> None:
    context = WorkflowContext(data={"keep": 1})
    with pytest.raises(ContextSerializationError, match="context value for 'bad' is not JSON-serializable") as info:
        context.set("bad", value)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValidationError)
    assert context.data == {"keep": 1}
    assert context.changes == {}


def test_keys_must_be_strings() -> None:
    context = WorkflowContext()
    with pytest.raises(ContextSerializationError, match="context keys must be strings"):
        context.set(1, "x")  # type: ignore[arg-type]
    with pytest.raises(ContextSerializationError, match="context keys must be strings"):
        context.update({"ok": 1, 2: "x"})  # type: ignore[dict-item]
    assert context.data == {}


def test_update_is_all_or_nothing() -> None:
    context = WorkflowContext()
    with pytest.raises(ContextSerializationError):
        context.update({"a": 1, "b": object()})
    assert context.data == {}
    context.update({"a": 1, "when": datetime(2030, 1, 1, tzinfo=UTC)})
    assert context.data == {"a": 1, "when": "2030-01-01T00:00:00Z"}
    assert context.changes == context.data


def test_get_with_default_and_metadata_is_read_only() -> None:
    context = WorkflowContext(data={"a": 1}, metadata={"source": "api"})
    assert context.get("a") == 1
    assert context.get("missing") is None
    assert context.get("missing", 5) == 5
    with pytest.raises(TypeError):
        context.metadata["source"] = "x"  # type: ignore[index]


def test_branch_copies_data_and_keeps_its_own_diff() -> None:
    context = WorkflowContext(data={"list": [1]}, metadata={"m": 1}, user_id="u", tenant_id="t")
    context.set("before", True)
    branch = context.branch()
    branch.set("in_branch", 1)
    branch.data["list"].append(2)
    assert branch.changes == {"in_branch": 1}
    assert context.data == {"list": [1], "before": True}
    assert (branch.instance_id, branch.user_id, branch.tenant_id) == (context.instance_id, "u", "t")
    assert dict(branch.metadata) == {"m": 1}


async def test_a_step_setting_a_non_json_value_fails_the_workflow(make_engine: Any) -> None:
    def bad(context: WorkflowContext) -> None:
        context.set("ok_before", 1)
        context.set("handle", object())

    after = Set("after")
    engine = make_engine(linear("ctx", Set("first", first=1), Fn("bad", bad), after))
    instance = await engine.start_workflow("ctx")
    assert instance.status is WorkflowStatus.FAILED
    assert instance.failed_step == "bad"
    assert "ContextSerializationError: context value for 'handle' is not JSON-serializable (object)" in (
        instance.error or ""
    )
    assert instance.data == {"first": 1, "ok_before": 1}  # the write before the refused one stays
    assert after.runs == 0
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "bad")
    assert record.status is StepStatus.FAILED


async def test_initial_data_is_normalised_and_checked(make_engine: Any) -> None:
    seen: dict[str, Any] = {}
    engine = make_engine(linear("init", Fn("look", lambda c: seen.update(c.data))))
    instance = await engine.start_workflow(
        "init", {"when": datetime(2030, 5, 1, tzinfo=UTC), "id": UUID(int=1), "tags": ("a", "b")}
    )
    expected = {"when": "2030-05-01T00:00:00Z", "id": "00000000-0000-0000-0000-000000000001", "tags": ["a", "b"]}
    assert seen == expected
    assert instance.data == expected
    with pytest.raises(ContextSerializationError):
        await engine.start_workflow("init", {"bad": object()})
    assert (await engine.list_instances())[1] == 1


async def test_datetimes_written_by_steps_are_stored_as_iso_strings(make_engine: Any) -> None:
    engine = make_engine(
        linear(
            "dates",
            Fn("stamp", lambda c: c.set("at", datetime(2030, 1, 1, 8, 30, tzinfo=UTC))),
            Fn("read", lambda c: c.set("read_type", type(c.get("at")).__name__)),
        )
    )
    instance = await engine.start_workflow("dates")
    assert instance.data == {"at": "2030-01-01T08:30:00Z", "read_type": "str"}
    assert datetime.fromisoformat(instance.data["at"]) == datetime(2030, 1, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("metadata", [{}, {"source": "api"}])
def test_step_context_equals_the_context_init_builds(metadata: dict[str, Any]) -> None:
    from flowstar.model.context import step_context

    ids = (UUID(int=1), UUID(int=2))
    at = datetime(2030, 1, 1, tzinfo=UTC)
    built = step_context(*ids, {"n": 1}, metadata, "s1", at, "ann", "acme")
    assert built == WorkflowContext(*ids, {"n": 1}, metadata, "s1", None, at, "ann", "acme")
    assert built.changes == {}
    assert built.step_history == []
    with pytest.raises(TypeError):
        built.metadata["source"] = "changed"  # type: ignore[index]
    metadata["later"] = True
    assert "later" not in built.metadata
