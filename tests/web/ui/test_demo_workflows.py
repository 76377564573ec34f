"""The demo's sample workflows, run to completion on a memory engine with a manual clock.

Each task goes to one of the demo's sample users (``UserDirectory.demo()``), who finds it
in their inbox (``find_tasks(user=...)``) and completes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.helpers import RecordingBus, eventually

from flowstar import FormValidationError, HumanTask, LocalExecutionEngine, ManualClock, User, WorkflowInstance
from flowstar.demo_workflows import ESCALATION_AFTER, FINANCE_LIMIT, REMINDER_AFTER, build_registry
from flowstar.events import HumanTaskEscalated
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.web import UserDirectory

USERS = UserDirectory.demo()
PAY_OUT = timedelta(seconds=1)  # the expense's last step is a timer of a second


def _user(user_id: str) -> User:
    user = USERS.get(user_id)
    assert user is not None, user_id
    return user


@pytest.fixture
async def engine(clock: ManualClock, bus: RecordingBus) -> AsyncIterator[LocalExecutionEngine]:
    running = LocalExecutionEngine(build_registry(), clock=clock, event_bus=bus)
    yield running
    await running.close()


async def _inbox_task(engine: LocalExecutionEngine, instance: WorkflowInstance, user_id: str) -> HumanTask:
    """The instance's one open task, as ``user_id`` finds it in their inbox."""
    page = await engine.find_tasks(user=_user(user_id), instance_id=instance.id, status=TaskStatus.PENDING)
    (task,) = page.items
    return task


async def _do(engine: LocalExecutionEngine, task: HumanTask, user_id: str, data: dict[str, Any]) -> WorkflowInstance:
    """Claim the task when it is a group's, then complete it, as the user would in the inbox."""
    user = _user(user_id)
    if task.assignee_id != user_id:
        await engine.claim_task(task.id, user=user)
    return await engine.complete_task(task.id, user_id, data, user=user)


async def _paid_out(engine: LocalExecutionEngine, clock: ManualClock, instance: WorkflowInstance) -> WorkflowInstance:
    clock.advance(PAY_OUT)
    return await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)


async def _steps(engine: LocalExecutionEngine, instance: WorkflowInstance) -> list[str]:
    return [r.step_name for r in await engine.get_history(instance.id)]


async def _expense(engine: LocalExecutionEngine, amount: int) -> WorkflowInstance:
    data = {"amount": amount, "requester": "alice", "manager": "bob"}
    return await engine.start_workflow("expense_approval", data, tenant_id="acme", created_by="alice")


async def test_a_small_expense_is_approved_without_a_person(engine: LocalExecutionEngine, clock: ManualClock) -> None:
    instance = await _expense(engine, 250)
    assert (await engine.get_tasks(instance_id=instance.id)) == []
    done = await _paid_out(engine, clock, instance)
    assert (done.data["status"], done.data["approved_by"]) == ("approved", "system")
    assert await _steps(engine, done) == [
        "submit_expense",
        "amount_router",
        "auto_approve",
        "process_decision",
        "pay_out",
    ]


async def test_an_expense_up_to_the_threshold_skips_finance(engine: LocalExecutionEngine, clock: ManualClock) -> None:
    instance = await _expense(engine, FINANCE_LIMIT)
    task = await _inbox_task(engine, instance, "bob")
    assert (task.title, task.assignee_id, task.assignee_group) == ("Approve expense", "bob", "managers")
    waiting = await _do(engine, task, "bob", {"decision": "approve", "comments": "fine"})
    assert (await engine.get_tasks(instance_id=instance.id)) == []  # no finance task
    done = await _paid_out(engine, clock, waiting)
    assert done.data["status"] == "approved"
    assert await _steps(engine, done) == [
        "submit_expense",
        "amount_router",
        "manager_approval",
        "finance_router",
        "process_decision",
        "pay_out",
    ]


@pytest.mark.parametrize(("finance", "status"), [("approve", "approved"), ("reject", "rejected")])
async def test_an_expense_above_the_threshold_goes_to_finance_after_the_manager(
    engine: LocalExecutionEngine, clock: ManualClock, finance: str, status: str
) -> None:
    instance = await _expense(engine, FINANCE_LIMIT + 1800)
    await _do(engine, await _inbox_task(engine, instance, "bob"), "bob", {"decision": "approve"})
    # Carol of finance sees it among her group's tasks, nobody else has it yet.
    task = await _inbox_task(engine, instance, "carol")
    assert (task.title, task.assignee_id, task.assignee_group) == ("Finance approval", None, "finance")
    assert (await engine.find_tasks(user=_user("bob"), instance_id=instance.id, status=TaskStatus.PENDING)).items == []
    with pytest.raises(FormValidationError) as refused:
        await _do(engine, task, "carol", {"finance_decision": finance, "cost_center": "marketing"})
    assert list(refused.value.field_errors) == ["cost_center"]

    waiting = await _do(engine, task, "carol", {"finance_decision": finance, "cost_center": "CC-1042"})
    done = await _paid_out(engine, clock, waiting)
    assert (done.data["decision"], done.data["finance_decision"], done.data["status"]) == ("approve", finance, status)
    assert await _steps(engine, done) == [
        "submit_expense",
        "amount_router",
        "manager_approval",
        "finance_router",
        "finance_approval",
        "process_decision",
        "pay_out",
    ]


async def test_a_rejected_expense_above_the_threshold_never_reaches_finance(
    engine: LocalExecutionEngine, clock: ManualClock
) -> None:
    instance = await _expense(engine, FINANCE_LIMIT * 2)
    waiting = await _do(engine, await _inbox_task(engine, instance, "bob"), "bob", {"decision": "reject"})
    done = await _paid_out(engine, clock, waiting)
    assert done.data["status"] == "rejected"
    assert "finance_approval" not in await _steps(engine, done)


async def test_document_review_joins_both_reviews(engine: LocalExecutionEngine) -> None:
    instance = await engine.start_workflow("document_review", {"title": "Q3 report"}, tenant_id="acme")
    manager = await _inbox_task(engine, instance, "bob")
    finance = await _inbox_task(engine, instance, "carol")
    assert [(t.step_name, t.assignee_group) for t in (manager, finance)] == [
        ("manager_review", "managers"),
        ("finance_review", "finance"),
    ]
    waiting = await _do(engine, manager, "bob", {"manager_verdict": "accept"})
    assert waiting.status == WorkflowStatus.WAITING  # the join waits for finance
    done = await _do(engine, finance, "carol", {"finance_verdict": "accept"})
    assert done.status == WorkflowStatus.COMPLETED
    assert done.data["accepted"] is True
    assert (await _steps(engine, done)).count("collect_reviews") == 1

    second = await engine.start_workflow("document_review", {}, tenant_id="acme")
    await _do(engine, await _inbox_task(engine, second, "carol"), "carol", {"finance_verdict": "accept"})
    done = await _do(engine, await _inbox_task(engine, second, "bob"), "bob", {"manager_verdict": "changes"})
    assert done.data["accepted"] is False


def _escalations(bus: RecordingBus) -> list[tuple[str, str | None, str | None]]:
    return [(e.action, e.assignee, e.assignee_group) for e in bus.events if isinstance(e, HumanTaskEscalated)]


async def _advance(
    engine: LocalExecutionEngine, clock: ManualClock, bus: RecordingBus, by: timedelta, fired: int
) -> None:
    """Move the clock on and wait until ``fired`` escalations have fired in all, their commit done."""
    clock.advance(by)
    await eventually(lambda: len(_escalations(bus)) >= fired)


async def test_an_unpaid_invoice_reminds_carol_then_moves_to_the_managers(
    engine: LocalExecutionEngine, clock: ManualClock, bus: RecordingBus
) -> None:
    instance = await engine.start_workflow("invoice_payment", {"supplier": "Paper Ltd"}, tenant_id="acme")
    task = await _inbox_task(engine, instance, "carol")
    assert (task.title, task.assignee_id, task.assignee_group) == ("Pay supplier invoice", "carol", None)
    assert task.description is not None
    assert "after 2 minutes" in task.description
    assert "after 5 minutes" in task.description

    clock.advance(REMINDER_AFTER - timedelta(seconds=1))
    await engine.settled(instance.id)
    assert _escalations(bus) == []
    await _advance(engine, clock, bus, timedelta(seconds=1), 1)
    await _advance(engine, clock, bus, REMINDER_AFTER, 2)  # the reminder repeats
    assert _escalations(bus) == [("reminded", "carol", None), ("reminded", "carol", None)]
    assert (await engine.get_task(task.id)).assignee_id == "carol"

    await _advance(engine, clock, bus, ESCALATION_AFTER - 2 * REMINDER_AFTER, 3)
    await engine.settled(instance.id)
    assert _escalations(bus)[-1] == ("escalated", None, "managers")
    moved = await engine.get_task(task.id)
    assert (moved.assignee_id, moved.assignee_group) == (None, "managers")
    # It left Carol's inbox for Bob's (the managers' group tab).
    assert (await engine.find_tasks(user=_user("carol"), instance_id=instance.id)).items == []
    task = await _inbox_task(engine, instance, "bob")

    with pytest.raises(FormValidationError) as refused:
        await _do(engine, task, "bob", {"payment_reference": "TX-991"})
    assert list(refused.value.field_errors) == ["paid_on"]
    done = await _do(engine, task, "bob", {"payment_reference": "TX-991", "paid_on": "2030-01-02"})
    assert (done.status, done.data["status"]) == (WorkflowStatus.COMPLETED, "paid")
    assert await _steps(engine, done) == ["register_invoice", "pay_invoice", "record_payment"]
    actions = [a.action for a in await engine.task_audit(task.id)]
    assert actions == ["created", "reminded", "reminded", "escalated", "claimed", "completed"]
