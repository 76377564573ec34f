"""Step groups inside definitions: each inner step is recorded under its group.

The two tests without ``make_engine`` (naming, direct execution) share this module's steps
and run once, not per store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowstar import (
    BaseMachineStep,
    Edge,
    ParallelGroup,
    SequentialGroup,
    StepStatus,
    ValidationError,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from tests.unit.helpers import Fn, Set, linear


class ValidateFormat(BaseMachineStep):
    name = "validate_format"

    async def execute(self, context: WorkflowContext) -> str:
        context.set("format_ok", True)
        return "format"


class ValidateContent(BaseMachineStep):
    name = "validate_content"

    async def execute(self, context: WorkflowContext) -> str:
        # Sees the previous inner step's write.
        context.set("content_ok", context.get("format_ok") is True)
        return "content"


async def test_sequential_group_runs_in_order_and_records_each_step(make_engine: Any) -> None:
    group = SequentialGroup(ValidateFormat(), ValidateContent())
    engine = make_engine(linear("seq", Set("start"), _keyed(group, "validation"), Set("end", end=True)))
    instance = await engine.start_workflow("seq")
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"format_ok": True, "content_ok": True, "end": True}
    history = await engine.get_history(instance.id)
    top = [(r.step_name, r.status, r.output_data) for r in history if r.parent_step is None]
    assert top == [
        ("start", StepStatus.SUCCEEDED, None),
        ("validation", StepStatus.SUCCEEDED, ["format", "content"]),
        ("end", StepStatus.SUCCEEDED, None),
    ]
    inner = [(r.step_name, r.status, r.output_data) for r in history if r.parent_step == "validation"]
    assert inner == [
        ("validate_format", StepStatus.SUCCEEDED, "format"),
        ("validate_content", StepStatus.SUCCEEDED, "content"),
    ]
    assert len(history) == 5


def _keyed(step: Any, key: str) -> Any:
    step.name = key
    return step


def test_a_group_can_be_keyed_by_any_name() -> None:
    group = SequentialGroup(ValidateFormat(), ValidateContent())
    assert group.name == "validate_format+validate_content"
    definition = WorkflowDefinition(
        name="w", steps={"validation": group}, initial_step="validation", terminal_steps={"validation"}
    )
    assert definition.validate() == []
    assert group.name == "validation"
    named = ParallelGroup(ValidateFormat(), name="checks")
    assert named.name == "checks"
    with pytest.raises(ValidationError) as info:
        WorkflowDefinition(name="w", steps={"other": named}, initial_step="other", terminal_steps={"other"})
    assert info.value.errors == ["step key 'other' does not match the step's name 'checks'"]


async def test_parallel_group_runs_concurrently_then_callback_sees_merged_writes(make_engine: Any) -> None:
    started = {n: asyncio.Event() for n in ("email", "slack")}

    def sender(name: str) -> Fn:
        async def body(context: WorkflowContext) -> str:
            started[name].set()
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 5)
            context.set(f"{name}_sent", True)
            return name

        return Fn(name, body)

    log_seen: dict[str, Any] = {}

    def log_notifications(context: WorkflowContext) -> str:
        log_seen.update(context.data)
        context.set("logged", [k for k in ("email_sent", "slack_sent") if context.get(k)])
        return "logged"

    group = ParallelGroup(sender("email"), sender("slack"), callback=Fn("log_notifications", log_notifications))
    engine = make_engine(
        WorkflowDefinition(
            name="par",
            steps={"notify": group, "done": Set("done")},
            edges=[Edge("notify", "done")],
            initial_step="notify",
            terminal_steps={"done"},
        )
    )
    instance = await engine.start_workflow("par")
    assert instance.status is WorkflowStatus.COMPLETED, instance.error
    assert log_seen == {"email_sent": True, "slack_sent": True}
    assert instance.data == {"email_sent": True, "slack_sent": True, "logged": ["email_sent", "slack_sent"]}
    history = await engine.get_history(instance.id)
    inner = {r.step_name: r for r in history if r.parent_step == "notify"}
    assert set(inner) == {"email", "slack", "log_notifications"}
    assert all(r.status is StepStatus.SUCCEEDED for r in inner.values())
    assert inner["log_notifications"].output_data == "logged"
    group_record = next(r for r in history if r.step_name == "notify")
    assert group_record.parent_step is None
    assert group_record.output_data == ["email", "slack", "logged"]


async def test_nested_groups_record_every_inner_step(make_engine: Any) -> None:
    inner = ParallelGroup(Set("p1", p1=1), Set("p2", p2=2), name="parallel_part")
    group = SequentialGroup(Set("first", first=0), inner, Fn("last", lambda c: c.get("p1") + c.get("p2")))
    engine = make_engine(linear("nested", _keyed(group, "pipeline")))
    instance = await engine.start_workflow("nested")
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"first": 0, "p1": 1, "p2": 2}
    history = await engine.get_history(instance.id)
    names = [r.step_name for r in history if r.parent_step == "pipeline"]
    assert sorted(names) == ["first", "last", "p1", "p2", "parallel_part"]
    last = next(r for r in history if r.step_name == "last")
    assert last.output_data == 3


async def test_a_failing_inner_step_fails_the_group_and_its_writes_stay(make_engine: Any) -> None:
    def boom(_context: WorkflowContext) -> None:
        raise RuntimeError("content invalid")

    group = SequentialGroup(ValidateFormat(), Fn("check", boom), Set("never", never=True))
    engine = make_engine(linear("gfail", Set("start", start=1), _keyed(group, "validation"), Set("end")))
    instance = await engine.start_workflow("gfail")
    assert instance.status is WorkflowStatus.FAILED
    assert instance.failed_step == "validation"
    # The group failed for good: what its steps wrote before the failure stays (the rule of
    # every step), and the steps after the failing one never ran.
    assert instance.data == {"start": 1, "format_ok": True}
    assert "RuntimeError: content invalid" in (instance.error or "")
    history = await engine.get_history(instance.id)
    inner = [(r.step_name, r.status, r.error) for r in history if r.parent_step == "validation"]
    assert inner == [
        ("validate_format", StepStatus.SUCCEEDED, None),
        ("check", StepStatus.FAILED, "RuntimeError: content invalid"),
    ]


async def test_group_executed_directly_runs_its_steps() -> None:
    context = WorkflowContext()
    result = await SequentialGroup(ValidateFormat(), ValidateContent()).execute(context)
    assert result == ["format", "content"]
    assert context.data == {"format_ok": True, "content_ok": True}
