"""Objects with only the documented ``Step`` protocol members are steps, on every store."""

from __future__ import annotations

from typing import Any

import pytest

from flowstar import (
    BaseMachineStep,
    StepStatus,
    StepType,
    TaskStatus,
    ValidationError,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from flowstar.model.steps import ProtocolStep
from tests.unit.helpers import Set, linear


class Charge:
    """No base class: the members 02-api-reference documents for ``Step``, nothing else."""

    def __init__(self, name: str = "charge", *, fail: bool = False, run: bool = True) -> None:
        self.name = name
        self.description = "Charge the card"
        self.fail = fail
        self.run = run
        self.calls: list[str] = []

    async def execute(self, context: WorkflowContext) -> Any:
        self.calls.append("execute")
        if self.fail:
            raise RuntimeError("card declined")
        context.set("charged", context.get("amount"))
        return {"charge_id": "ch-1"}

    async def can_execute(self, context: WorkflowContext) -> bool:
        self.calls.append("can_execute")
        return self.run

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        self.calls.append(f"on_success {result['charge_id']}")
        context.set("receipt", result["charge_id"])

    async def on_failure(self, context: WorkflowContext, error: Exception) -> None:
        self.calls.append(f"on_failure {error}")


class OnlyExecute:
    """The smallest step: a name and a plain (synchronous) ``execute``."""

    name = "stamp"

    def execute(self, context: WorkflowContext) -> str:
        context.set("stamped", True)
        return "done"


class Signoff:
    """A human step described by a plain object."""

    name = "signoff"
    description = "Sign the order off"
    step_type = "human"
    title = "Sign off"
    form_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    assignee = "boss@example.com"


def test_a_protocol_object_is_wrapped_as_a_machine_step() -> None:
    charge = Charge()
    definition = linear("pay", charge, Set("done"))
    step = definition.steps["charge"]
    assert isinstance(step, ProtocolStep)
    assert isinstance(step, BaseMachineStep)
    assert step.wrapped is charge
    assert (step.name, step.description, step.step_type) == ("charge", "Charge the card", StepType.MACHINE)
    assert definition.step_types["charge"] is StepType.MACHINE
    assert definition.validate() == []


async def test_a_protocol_step_runs_with_its_hooks(make_engine: Any) -> None:
    charge = Charge()
    engine = make_engine(linear("pay", charge, Set("done", finished=True)))
    instance = await engine.start_workflow("pay", {"amount": 12})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"amount": 12, "charged": 12, "receipt": "ch-1", "finished": True}
    assert charge.calls == ["can_execute", "execute", "on_success ch-1"]
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "charge")
    assert (record.status, record.output_data) == (StepStatus.SUCCEEDED, {"charge_id": "ch-1"})


async def test_a_protocol_step_can_skip_and_fail(make_engine: Any) -> None:
    skipped, failing = Charge("skipped", run=False), Charge("failing", fail=True)
    engine = make_engine(linear("skip", skipped, Set("after", after=True)), linear("boom", failing))
    done = await engine.start_workflow("skip", {"amount": 1})
    assert (done.status, done.data) == (WorkflowStatus.COMPLETED, {"amount": 1, "after": True})
    assert skipped.calls == ["can_execute"]
    failed = await engine.start_workflow("boom", {"amount": 1})
    assert failed.status is WorkflowStatus.FAILED
    assert failed.failed_step == "failing"
    assert "card declined" in (failed.error or "")
    assert failing.calls == ["can_execute", "execute", "on_failure card declined"]


async def test_a_synchronous_execute_without_hooks_is_enough(make_engine: Any) -> None:
    engine = make_engine(linear("stamp", OnlyExecute()))
    instance = await engine.start_workflow("stamp")
    assert (instance.status, instance.data) == (WorkflowStatus.COMPLETED, {"stamped": True})


async def test_a_protocol_object_declaring_human_is_a_human_task(make_engine: Any) -> None:
    definition = linear("order", Set("submit"), Signoff(), Set("ship", shipped=True))
    assert definition.step_types["signoff"] is StepType.HUMAN
    engine = make_engine(definition)
    instance = await engine.start_workflow("order")
    assert (instance.status, instance.current_step) == (WorkflowStatus.WAITING, "signoff")
    [task] = await engine.get_tasks(instance_id=instance.id)
    assert (task.title, task.assignee_id, task.status) == ("Sign off", "boss@example.com", TaskStatus.PENDING)
    await engine.complete_human_task(instance.id, "signoff", "boss@example.com", {"ok": True})
    finished = await engine.get_instance(instance.id)
    assert finished.status is WorkflowStatus.COMPLETED
    assert finished.data == {"ok": True, "shipped": True}


class NoExecute:
    name = "idle"


class Waits:
    name = "wait"
    step_type = "timer"

    async def execute(self, context: WorkflowContext) -> None:
        """Never run: a timer needs TimerStep."""


class Odd:
    name = "odd"
    step_type = "quantum"

    async def execute(self, context: WorkflowContext) -> None:
        """Never run: no such step type."""


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (NoExecute(), "step 'idle' (NoExecute) does not implement the Step protocol (it needs async execute(context))"),
        (Waits(), "step 'wait' (Waits) is a timer step: make it a TimerStep subclass"),
        (Odd(), "step 'odd' (Odd) has an unknown step_type 'quantum'"),
        (object(), "step 'x' (object) does not implement the Step protocol"),
    ],
)
def test_objects_that_are_no_steps_are_refused(step: Any, message: str) -> None:
    key = getattr(step, "name", "x")
    with pytest.raises(ValidationError) as info:
        WorkflowDefinition(name="w", steps={key: step}, initial_step=key, terminal_steps={key})
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(message)
