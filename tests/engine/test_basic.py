"""The in-process engine: starting, settling, failing, history, hooks and lookups."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any
from uuid import UUID, uuid4

import pytest

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    ContextSerializationError,
    ExecutionEngine,
    InstanceNotFoundError,
    StepExecutionError,
    StepStatus,
    WorkflowContext,
    WorkflowStatus,
)
from tests.unit.helpers import Fn, Set, linear


async def _yielding(context: WorkflowContext) -> None:
    # Give the event loop many chances to return to the caller too early.
    for _ in range(20):
        await asyncio.sleep(0)
    context.set(context.current_step, True)


async def test_start_workflow_returns_only_once_finished(make_engine: Any) -> None:
    steps = [Fn(f"s{i}", _yielding) for i in range(5)]
    engine = make_engine(linear("chain", *steps))
    instance = await engine.start_workflow("chain", {"input": 1})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.data == {"input": 1, "s0": True, "s1": True, "s2": True, "s3": True, "s4": True}
    assert instance.current_step == "s4"
    assert instance.completed_at is not None
    assert [s.runs for s in steps] == [1, 1, 1, 1, 1]


async def test_start_workflow_returns_once_waiting(make_engine: Any) -> None:
    engine = make_engine(linear("wait", Fn("a", _yielding), Fn("b", _yielding), BaseHumanStep("approve")))
    instance = await engine.start_workflow("wait")
    assert instance.status is WorkflowStatus.WAITING
    assert instance.current_step == "approve"
    assert instance.context.data == {"a": True, "b": True}
    assert instance.completed_at is None


async def test_instance_view_fields(make_engine: Any) -> None:
    engine = make_engine(linear("view", Set("a", x=1), Set("b", y=2)))
    instance = await engine.start_workflow(
        "view", {"n": 1}, tenant_id="acme", created_by="ann", metadata={"source": "test"}
    )
    assert isinstance(instance.id, UUID)
    assert instance.tenant_id == "acme"
    assert instance.created_by == "ann"
    assert instance.context.user_id == "ann"
    assert instance.context.tenant_id == "acme"
    assert dict(instance.context.metadata) == {"source": "test"}
    assert instance.data == {"n": 1, "x": 1, "y": 2}
    assert [(h.step_name, h.status) for h in instance.context.step_history] == [
        ("a", StepStatus.SUCCEEDED),
        ("b", StepStatus.SUCCEEDED),
    ]
    assert instance.version == 3  # start, a, b
    again = await engine.get_instance(str(instance.id))
    assert again == await engine.get_instance(instance.id)
    assert again.data == instance.data


async def test_steps_see_the_context_they_need(make_engine: Any) -> None:
    seen: dict[str, Any] = {}

    def look(context: WorkflowContext) -> None:
        seen.update(
            step=context.current_step,
            user=context.user_id,
            tenant=context.tenant_id,
            instance=context.instance_id,
            data=dict(context.data),
        )

    engine = make_engine(linear("ctx", Set("first", a=1), Fn("look", look)))
    instance = await engine.start_workflow("ctx", {"x": 0}, tenant_id="t1", created_by="u1")
    assert seen == {"step": "look", "user": "u1", "tenant": "t1", "instance": instance.id, "data": {"x": 0, "a": 1}}


async def test_unknown_instance_raises_instance_not_found(make_engine: Any) -> None:
    engine = make_engine(linear("w", Set("a")))
    with pytest.raises(InstanceNotFoundError) as info:
        await engine.get_instance(uuid4())
    assert isinstance(info.value, KeyError)
    assert "no workflow instance with id" in str(info.value)
    with pytest.raises(KeyError):
        await engine.get_instance("not-a-uuid")


async def test_a_failing_step_fails_the_workflow(make_engine: Any) -> None:
    def boom(context: WorkflowContext) -> None:
        context.set("partial", True)
        raise RuntimeError("card declined")

    after = Set("after")
    engine = make_engine(linear("fail", Set("ok", a=1), Fn("pay", boom), after))
    instance = await engine.start_workflow("fail")
    assert instance.status is WorkflowStatus.FAILED
    assert instance.failed_step == "pay"
    assert instance.current_step == "pay"
    assert instance.error == "step 'pay' failed after 1 attempt(s): RuntimeError: card declined"
    # A step that fails for good keeps what it wrote before raising, for debugging.
    assert instance.data == {"a": 1, "partial": True}
    assert after.runs == 0
    history = await engine.get_history(instance.id)
    assert [(r.step_name, r.status, r.error) for r in history] == [
        ("ok", StepStatus.SUCCEEDED, None),
        ("pay", StepStatus.FAILED, "RuntimeError: card declined"),
    ]


async def test_a_non_json_result_fails_the_step(make_engine: Any) -> None:
    engine = make_engine(linear("res", Fn("bad", lambda _c: object()), Set("end")))
    instance = await engine.start_workflow("res")
    assert instance.status is WorkflowStatus.FAILED
    assert "ContextSerializationError" in (instance.error or "")


async def test_an_unserializable_context_value_is_refused_at_set(make_engine: Any) -> None:
    raised: list[BaseException] = []

    def bad(context: WorkflowContext) -> None:
        context.set("fine", 1)
        try:
            context.set("socket", object())
        except ContextSerializationError as exc:
            raised.append(exc)
            raise

    after = Set("after", after=True)
    engine = make_engine(linear("bad", Set("before", before=True), Fn("bad", bad), after))
    done = await engine.start_workflow("bad", {"n": 1})
    assert len(raised) == 1  # refused at set(), inside the step
    assert done.status is WorkflowStatus.FAILED
    stored = await engine.get_instance(done.id)
    assert stored.status is WorkflowStatus.FAILED
    assert stored.error is not None
    assert "ContextSerializationError" in stored.error
    assert "socket" in stored.error
    assert stored.data == {"n": 1, "before": True, "fine": 1}  # the write before the refused one
    assert after.runs == 0
    failed = (await engine.get_history(done.id))[-1]
    assert (failed.step_name, failed.status) == ("bad", StepStatus.FAILED)
    assert failed.error is not None
    assert failed.error.startswith("ContextSerializationError")

    # Unserializable initial data is refused before anything is written.
    with pytest.raises(ContextSerializationError):
        await engine.start_workflow("bad", {"when": object()})
    assert (await engine.list_instances())[1] == 1


async def test_step_results_and_inputs_are_recorded(make_engine: Any) -> None:
    engine = make_engine(linear("rec", Fn("compute", lambda c: {"total": c.get("n") * 2}), Set("end", done=1)))
    instance = await engine.start_workflow("rec", {"n": 21})
    history = await engine.get_history(instance.id)
    compute = history[0]
    assert compute.step_name == "compute"
    assert compute.step_type == "machine"
    assert compute.output_data == {"total": 42}
    assert compute.input_data == {"n": 21}
    assert compute.attempt == 1
    assert compute.instance_id == str(instance.id)
    assert compute.completed_at is not None
    assert history[1].input_data == {"n": 21}
    assert instance.data == {"n": 21, "done": 1}


async def test_hooks_run_in_order(make_engine: Any) -> None:
    calls: list[str] = []

    class Hooked(BaseMachineStep):
        def __init__(self, name: str, fail: bool) -> None:
            super().__init__(name)
            self.fail = fail

        async def execute(self, context: WorkflowContext) -> str:
            calls.append(f"{self.name}:execute")
            if self.fail:
                raise ValueError("nope")
            return "result"

        async def on_success(self, context: WorkflowContext, result: Any) -> None:
            calls.append(f"{self.name}:success:{result}")
            context.set("hook_saw", result)

        async def on_failure(self, context: WorkflowContext, error: Exception) -> None:
            calls.append(f"{self.name}:failure:{error}")

    engine = make_engine(linear("hooks", Hooked("a", fail=False), Hooked("b", fail=True)))
    instance = await engine.start_workflow("hooks")
    assert calls == ["a:execute", "a:success:result", "b:execute", "b:failure:nope"]
    assert instance.data == {"hook_saw": "result"}
    assert instance.status is WorkflowStatus.FAILED


async def test_on_failure_hook_error_does_not_hide_the_step_error(make_engine: Any) -> None:
    class BadHook(BaseMachineStep):
        async def execute(self, context: WorkflowContext) -> None:
            raise ValueError("the real error")

        async def on_failure(self, context: WorkflowContext, error: Exception) -> None:
            raise RuntimeError("hook broke")

    engine = make_engine(linear("badhook", BadHook("step"), Set("end")))
    instance = await engine.start_workflow("badhook")
    assert instance.status is WorkflowStatus.FAILED
    assert "ValueError: the real error" in (instance.error or "")


async def test_a_skipped_step_lets_the_workflow_continue(make_engine: Any) -> None:
    class Guarded(BaseMachineStep):
        async def can_execute(self, context: WorkflowContext) -> bool:
            return bool(context.get("allowed"))

        async def execute(self, context: WorkflowContext) -> None:
            context.set("guarded_ran", True)

    engine = make_engine(linear("guard", Guarded("guarded"), Set("end", end=True)))
    skipped = await engine.start_workflow("guard", {"allowed": False})
    assert skipped.status is WorkflowStatus.COMPLETED
    assert skipped.data == {"allowed": False, "end": True}
    history = await engine.get_history(skipped.id)
    assert [(r.step_name, r.status) for r in history] == [
        ("guarded", StepStatus.SKIPPED),
        ("end", StepStatus.SUCCEEDED),
    ]
    ran = await engine.start_workflow("guard", {"allowed": True})
    assert ran.data == {"allowed": True, "guarded_ran": True, "end": True}


async def test_execute_step_outside_a_workflow(make_engine: Any) -> None:
    engine = make_engine()
    context = WorkflowContext(data={"n": 2})
    result = await engine.execute_step(Fn("double", lambda c: c.get("n") * 2), context)
    assert result == 4

    class Never(BaseMachineStep):
        async def can_execute(self, context: WorkflowContext) -> bool:
            return False

    assert await engine.execute_step(Never("never"), context, previous_result="prev") == "prev"

    def boom(_context: WorkflowContext) -> None:
        raise ZeroDivisionError("division by zero")

    with pytest.raises(StepExecutionError, match="step 'boom' failed: ZeroDivisionError: division by zero") as info:
        await engine.execute_step(Fn("boom", boom), context)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


async def test_instances_are_independent(make_engine: Any) -> None:
    engine = make_engine(linear("iso", Fn("copy", lambda c: c.set("out", c.get("n") * 10)), Set("end")))
    results = await asyncio.gather(*(engine.start_workflow("iso", {"n": n}) for n in range(20)))
    assert [r.data["out"] for r in results] == [n * 10 for n in range(20)]
    assert len({r.id for r in results}) == 20


async def test_list_instances_filters(make_engine: Any) -> None:
    engine = make_engine(linear("done", Set("a")), linear("waits", BaseHumanStep("h")))
    for _ in range(3):
        await engine.start_workflow("done", tenant_id="acme")
    await engine.start_workflow("waits", created_by="bob")
    page, total = await engine.list_instances(workflow_name="done")
    assert total == 3
    assert {i.status for i in page} == {WorkflowStatus.COMPLETED}
    waiting, total = await engine.list_instances(status=WorkflowStatus.WAITING)
    assert total == 1
    assert waiting[0].workflow_name == "waits"
    assert (await engine.list_instances(tenant_id="acme"))[1] == 3
    assert (await engine.list_instances(created_by="bob"))[1] == 1
    limited, total = await engine.list_instances(limit=2, offset=1)
    assert (len(limited), total) == (2, 4)


async def test_nested_in_place_mutation_is_not_committed(make_engine: Any) -> None:
    def mutate(context: WorkflowContext) -> None:
        context.get("cart")["items"].append("sneaky")  # no set(): not a committed write
        context.set("seen", len(context.get("cart")["items"]))

    engine = make_engine(linear("snap", Fn("mutate", mutate), Set("end")))
    instance = await engine.start_workflow("snap", {"cart": {"items": ["a"]}})
    assert instance.data["cart"] == {"items": ["a"]}
    assert instance.data["seen"] == 2


async def test_local_engine_satisfies_the_execution_engine_protocol(make_engine: Any) -> None:
    engine: ExecutionEngine = make_engine()
    for method in ("start_workflow", "execute_step", "complete_human_task", "cancel_workflow", "retry", "get_instance"):
        assert inspect.iscoroutinefunction(getattr(engine, method))


class _ComparedByName(BaseMachineStep):
    """A step class with ``__eq__`` and so no hash (like a dataclass step): still runs."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ComparedByName) and other.name == self.name

    __hash__ = None  # type: ignore[assignment]

    async def execute(self, context: WorkflowContext) -> None:
        context.set(self.name, True)


async def test_unhashable_steps_run(make_engine: Any) -> None:
    engine = make_engine(linear("unhashable", _ComparedByName("a"), _ComparedByName("b")))
    for _ in range(2):
        done = await engine.start_workflow("unhashable")
        assert (done.status, done.data) == (WorkflowStatus.COMPLETED, {"a": True, "b": True})


async def test_a_guard_or_hook_set_on_the_instance_is_honoured(make_engine: Any) -> None:
    guarded, hooked = Set("guarded", ran=True), Set("hooked", hooked=True)
    seen: list[Any] = []

    async def never(context: WorkflowContext) -> bool:
        return False

    async def after(context: WorkflowContext, result: Any) -> None:
        seen.append(context.current_step)

    guarded.can_execute = never  # type: ignore[method-assign]
    hooked.on_success = after  # type: ignore[method-assign]
    done = await make_engine(linear("instance_hooks", guarded, hooked)).start_workflow("instance_hooks")
    assert done.data == {"hooked": True}
    assert seen == ["hooked"]


async def test_other_callers_wait_for_steps_the_starting_call_runs(make_engine: Any) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def blocked(context: WorkflowContext) -> None:
        seen.append(str(context.instance_id))
        entered.set()
        await release.wait()
        context.set("released", True)

    engine = make_engine(linear("blocking", Fn("wait", blocked), Set("after", after=True)))
    starting = asyncio.create_task(engine.start_workflow("blocking"))
    await entered.wait()
    settled = asyncio.create_task(engine.settled(seen[0]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not settled.done()  # the first step still runs inside start_workflow's call
    release.set()
    done = await starting
    await settled
    assert done.data == {"released": True, "after": True}
