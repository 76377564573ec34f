"""A compiled step's execute(): the context round trip and the command it returns."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from flowstar import ContextSerializationError, ValidationError, WorkflowContext, WorkflowRegistry
from flowstar.flow import (
    DictContext,
    complete,
    current_data,
    fail,
    get_context,
    goto,
    sleep,
    step,
    wait,
    wait_for_event,
    wakeup,
    workflow,
)
from flowstar.model.commands import Complete, Fail, Goto, Sleep, Wait, WaitFor


async def run_step(cls: type, name: str, data: dict[str, Any]) -> tuple[Any, WorkflowContext]:
    context = WorkflowContext(data=data, current_step=name)
    command = await cls.definition.steps[name].execute(context)
    return command, context


def build(registry: WorkflowRegistry) -> type:
    @workflow("execute_probe", registry=registry)
    class Probe:
        @dataclasses.dataclass
        class Context:
            order_id: int
            items: list[str] = dataclasses.field(default_factory=list)
            total: float = 0.0

        @step(start=True)
        def add(self):
            ctx = get_context()
            ctx.items.append("book")
            ctx.total += 12.5
            return goto(self.ask)

        @step()
        def ask(self):
            return wait.for_signal("approval", timeout=timedelta(hours=2))

        @step()
        async def after(self):
            seen = wakeup()
            return complete(kind=seen.kind if seen else None, thread=threading.current_thread().name)

        @step()
        def nothing(self):
            return None

        @step()
        def not_a_command(self):
            return {"next": "after"}

        @step()
        def explicit(self):
            return wait.for_signal("x", next=self.add, lookback=30)

        @step()
        def loop(self):
            return sleep(timedelta(minutes=5))

        @step()
        def event(self):
            return wait_for_event("payment_received", filter="amount > 100", timeout=10, on_timeout=self.nothing)

        @step()
        def last(self):
            return fail("no luck")

    return Probe


async def test_the_typed_context_is_read_and_only_changes_are_written(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    data = {"order_id": 7, "items": ["pen"], "total": 1.0, "extra": {"kept": True}}
    command, context = await run_step(probe, "add", data)
    assert command == Goto("ask")
    assert context.changes == {"items": ["pen", "book"], "total": 13.5}
    assert context.data == {"order_id": 7, "items": ["pen", "book"], "total": 13.5, "extra": {"kept": True}}


async def test_a_wait_goes_on_with_the_next_declared_step_and_times_out_there_too(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    command, _ = await run_step(probe, "ask", {"order_id": 1})
    assert command == Wait(
        waits=(WaitFor("signal", "approval"),), next="after", timeout=7200.0, on_timeout="after", lookback=None
    )


async def test_explicit_next_lookback_and_event_filters_pass_through(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    command, _ = await run_step(probe, "explicit", {"order_id": 1})
    assert command == Wait(waits=(WaitFor("signal", "x"),), next="add", lookback=30.0)
    command, _ = await run_step(probe, "event", {"order_id": 1})
    assert command == Wait(
        waits=(WaitFor("event", "payment_received", "context.get('amount') > 100"),),
        next="last",
        timeout=10.0,
        on_timeout="nothing",
    )


async def test_sleep_complete_and_fail_commands(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    assert (await run_step(probe, "loop", {"order_id": 1}))[0] == Sleep(300.0, None)
    assert (await run_step(probe, "last", {"order_id": 1}))[0] == Fail("no luck")


async def test_wakeup_is_seen_once_and_async_steps_run_on_the_loop(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    command, context = await run_step(probe, "after", {"order_id": 1, "_wakeup": {"kind": "timeout", "name": None}})
    assert command == Complete({"kind": "timeout", "thread": threading.current_thread().name})
    assert context.changes == {"items": [], "total": 0.0}  # the defaults are written too
    command, _ = await run_step(probe, "after", {"order_id": 1})
    assert isinstance(command, Complete)
    assert command.result["kind"] is None


async def test_no_command_or_something_else_fails_the_instance_clearly(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    command, _ = await run_step(probe, "nothing", {"order_id": 1})
    assert command == Fail("step 'nothing' returned no command: return goto(), complete(), fail(), sleep() or a wait")
    command, _ = await run_step(probe, "not_a_command", {"order_id": 1})
    assert command == Fail("step 'not_a_command' returned dict, not a command (goto, complete, ...)")


async def test_data_that_does_not_fit_the_context_raises(registry: WorkflowRegistry) -> None:
    probe = build(registry)
    with pytest.raises(ValidationError, match="does not fit its Context"):
        await run_step(probe, "add", {"order_id": "seven"})


async def test_sync_steps_run_in_a_thread_and_still_see_their_context(registry: WorkflowRegistry) -> None:
    seen: dict[str, Any] = {}

    @workflow("threads", registry=registry)
    class Threads:
        @step(start=True)
        def work(self):
            seen["thread"] = threading.current_thread().name
            seen["context"] = get_context()
            seen["data"] = dict(current_data())
            get_context()["answer"] = 42
            return complete()

    _, context = await run_step(Threads, "work", {"question": "?"})
    assert seen["thread"] != threading.current_thread().name
    assert isinstance(seen["context"], DictContext)
    assert seen["data"] == {"question": "?"}
    assert context.changes == {"answer": 42}


async def test_a_dict_context_reads_by_attribute_and_key(registry: WorkflowRegistry) -> None:
    @workflow("dicts", registry=registry)
    class Dicts:
        @step(start=True)
        async def work(self):
            ctx = get_context()
            ctx.count = ctx.count + 1
            ctx["label"] = f"n{ctx['count']}"
            del ctx.gone
            with pytest.raises(AttributeError, match="no 'missing'"):
                _ = ctx.missing
            return complete()

    _, context = await run_step(Dicts, "work", {"count": 1, "gone": "x"})
    assert context.changes == {"count": 2, "label": "n2", "gone": None}


async def test_a_wrong_assignment_is_refused_after_the_step(registry: WorkflowRegistry) -> None:
    @workflow("bad_assignment", registry=registry)
    class BadAssignment:
        class Context(msgspec.Struct):
            count: int = 0

        @step(start=True)
        async def work(self):
            get_context().count = "many"
            return complete()

    with pytest.raises(ValidationError, match="Expected `int`, got `str`"):
        await run_step(BadAssignment, "work", {})


async def test_get_context_outside_a_step_says_so() -> None:
    with pytest.raises(RuntimeError, match="only available inside a running @step"):
        get_context()


async def test_inputs_of_a_human_step_come_from_the_data(registry: WorkflowRegistry) -> None:
    calls: list[tuple[str, int]] = []

    @workflow("inputs", registry=registry)
    class Inputs:
        class Context(msgspec.Struct):
            notes: str = ""

        @step(start=True)
        def review(self, reviewer_notes: str, score: int = 5):
            calls.append((reviewer_notes, score))
            get_context().notes = reviewer_notes
            return complete()

    _, context = await run_step(Inputs, "review", {"reviewer_notes": "fine", "score": "4"})
    assert calls == [("fine", 4)]
    assert context.changes == {"notes": "fine"}
    await run_step(Inputs, "review", {"reviewer_notes": "again"})
    assert calls[-1] == ("again", 5)
    with pytest.raises(ValidationError, match="needs input 'reviewer_notes'"):
        await run_step(Inputs, "review", {})


async def test_a_dict_context_writes_through_like_a_graph_steps_set(registry: WorkflowRegistry) -> None:
    seen: dict[str, Any] = {}

    @workflow("write_through", registry=registry)
    class WriteThrough:
        @step(start=True)
        async def work(self):
            ctx = get_context()
            ctx.pair = (1, 2)
            seen["pair"] = ctx.pair  # converted at once, as context.set does
            try:
                ctx.ratio = float("nan")
            except ContextSerializationError as exc:  # refused on its line, nothing written
                seen["refused"] = str(exc)
            ctx["items"].append("pen")  # changed in place: written back after the step
            ctx.meta["seen"] = True
            _ = ctx.untouched  # read, not changed: not written
            return complete()

    data = {"items": ["book"], "meta": {}, "untouched": [1]}
    _, context = await run_step(WriteThrough, "work", data)
    assert seen["pair"] == [1, 2]
    assert "context value for 'ratio'" in seen["refused"]
    assert context.changes == {"pair": [1, 2], "items": ["book", "pen"], "meta": {"seen": True}}


async def test_in_place_changes_of_a_dict_context_are_kept_on_every_store(flow_engine: Any, registry: Any) -> None:
    @workflow("in_place", registry=registry)
    class InPlace:
        @step(start=True)
        async def add(self):
            get_context().lines.append("pen")
            return goto(self.more)

        @step()
        async def more(self):
            get_context()["lines"].append("ink")
            return complete()

    run = await flow_engine.start("in_place", lines=["book"])
    assert run.status.value == "completed"
    assert (await flow_engine.get(run.id)).data["lines"] == ["book", "pen", "ink"]
