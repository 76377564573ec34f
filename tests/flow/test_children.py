"""Child workflows: ``start_child`` starts another workflow and waits for its end, on every store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from flowstar import ManualClock, StepStatus, TaskStatus, WorkflowRegistry, WorkflowStatus
from flowstar.flow import (
    FlowEngine,
    child_result,
    complete,
    fail,
    get_context,
    goto,
    sleep,
    start_child,
    step,
    wait,
    workflow,
)
from flowstar.model.children import CHILD_PREFIX, PARENT_KEY, child_key
from flowstar.testing import advance


class Shipment(msgspec.Struct):
    order_id: int
    label: str = ""


class Order(msgspec.Struct):
    order_id: int
    shipment_status: str = ""
    label: str = ""
    error: str = ""


def shipping(registry: WorkflowRegistry, *, waits: bool = False, fails: bool = False) -> type:
    @workflow("shipping", registry=registry)
    class Shipping:
        Context = Shipment

        @step(start=True)
        def pack(self):
            if fails:
                return fail("no courier")
            if waits:
                return wait.for_signal("picked_up")
            return goto(self.label_it)

        @step()
        def label_it(self):
            ctx = get_context()
            ctx.label = f"PKG-{ctx.order_id}"
            return complete()

    return Shipping


def orders(registry: WorkflowRegistry) -> type:
    @workflow("orders", registry=registry)
    class Orders:
        Context = Order

        @step(start=True)
        def ship(self):
            return start_child("shipping", order_id=get_context().order_id)

        @step()
        def shipped(self):
            result = child_result()
            assert result is not None
            ctx = get_context()
            ctx.shipment_status = result.status
            ctx.label = str(result.data.get("label", ""))
            ctx.error = result.error or ""
            return complete()

    return Orders


async def test_a_parent_goes_on_with_its_childs_result(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    shipping(registry)
    orders(registry)
    parent = await flow_engine.start("orders", order_id=7)
    assert parent.status == WorkflowStatus.COMPLETED
    assert (parent.context.shipment_status, parent.context.label) == ("completed", "PKG-7")
    record = parent.data["child"]
    child = await flow_engine.get(record["id"])
    assert child.name == "shipping"
    assert child.status == WorkflowStatus.COMPLETED
    assert child.data["order_id"] == 7
    metadata = (await flow_engine.engine.store.load_instance(str(child.id))).metadata
    assert metadata[PARENT_KEY]["instance_id"] == str(parent.id)


async def test_a_parent_waits_until_a_waiting_child_ends(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    shipping(registry, waits=True)
    orders(registry)
    parent = await flow_engine.start("orders", order_id=8)
    assert parent.status == WorkflowStatus.WAITING
    assert parent.waiting_signal is not None
    assert parent.waiting_signal.startswith(CHILD_PREFIX)
    child_id = parent.waiting_signal.removeprefix(CHILD_PREFIX)
    assert (await flow_engine.get(child_id)).status == WorkflowStatus.WAITING

    await flow_engine.signal("picked_up", instance_id=child_id)
    parent = await parent.refresh()
    assert parent.status == WorkflowStatus.COMPLETED
    assert parent.context.label == "PKG-8"


async def test_a_failed_child_is_reported_to_the_parent(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    shipping(registry, fails=True)
    orders(registry)
    parent = await flow_engine.start("orders", order_id=9)
    assert parent.status == WorkflowStatus.COMPLETED
    assert parent.context.shipment_status == "failed"
    assert "no courier" in parent.context.error


async def test_canceling_the_parent_cancels_its_child(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    shipping(registry, waits=True)
    orders(registry)
    parent = await flow_engine.start("orders", order_id=10)
    assert parent.waiting_signal is not None
    child_id = parent.waiting_signal.removeprefix(CHILD_PREFIX)

    canceled = await flow_engine.cancel(parent.id, reason="customer left")
    assert canceled.status == WorkflowStatus.CANCELED
    child = await flow_engine.get(child_id)
    assert child.status == WorkflowStatus.CANCELED
    assert child.error is not None
    assert "customer left" in child.error
    # The child's end reached a parent that no longer waits: nothing changed there.
    assert (await parent.refresh()).status == WorkflowStatus.CANCELED


async def test_canceling_a_grandparent_cancels_the_whole_tree(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    shipping(registry, waits=True)
    orders(registry)

    @workflow("campaign", registry=registry)
    class Campaign:
        @step(start=True)
        def order(self):
            return start_child("orders", result_key="order", order_id=11)

        @step()
        def done(self):
            return complete()

    top = await flow_engine.start("campaign")
    assert top.waiting_signal is not None
    middle_id = top.waiting_signal.removeprefix(CHILD_PREFIX)
    middle = await flow_engine.get(middle_id)
    assert middle.waiting_signal is not None
    bottom_id = middle.waiting_signal.removeprefix(CHILD_PREFIX)

    await flow_engine.cancel(top.id)
    statuses = [(await flow_engine.get(i)).status for i in (top.id, middle_id, bottom_id)]
    assert statuses == [WorkflowStatus.CANCELED] * 3


async def test_an_unknown_child_workflow_fails_the_parent_clearly(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    @workflow("lonely", registry=registry)
    class Lonely:
        @step(start=True)
        def spawn(self):
            return start_child("no_such_workflow", next=self.after)

        @step()
        def after(self):
            return complete()

    run = await flow_engine.start("lonely")
    assert run.status == WorkflowStatus.FAILED
    assert run.error is not None
    assert "could not start child workflow 'no_such_workflow'" in run.error


async def test_a_child_started_again_by_a_rerun_step_is_the_same_child(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    """The child's start is keyed by the parent's activation: a second run starts nothing new."""
    shipping(registry, waits=True)
    orders(registry)
    engine = flow_engine.engine
    parent = await flow_engine.start("orders", order_id=12)
    records = await engine.store.step_records(str(parent.id))
    (record,) = [r for r in records if r.step_name == "ship" and r.status == StepStatus.SUCCEEDED]
    # What the parent's first activation does again when a worker runs it after a crash
    # before its commit: the same key finds the same child.
    again = await engine.start_workflow(
        "shipping", {"order_id": 12}, idempotency_key=child_key(str(parent.id), record.id)
    )
    assert parent.waiting_signal == CHILD_PREFIX + str(again.id)
    assert len((await engine.find_instances(workflow_name="shipping")).items) == 1


async def test_a_child_that_ends_before_the_parent_waits_is_not_lost(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    """A child with no waits ends inside the parent's step, before the parent's wait commits."""
    shipping(registry)

    @workflow("slow_parent", registry=registry)
    class SlowParent:
        @step(start=True)
        def first(self):
            return sleep(timedelta(minutes=5), next=self.spawn)

        @step()
        def spawn(self):
            return start_child(SHIPPING, order_id=13)

        @step()
        def collect(self):
            result = child_result()
            assert result is not None
            return complete(label=result.data["label"], child_completed=result.completed)

    SHIPPING = "shipping"
    run = await flow_engine.start("slow_parent")
    assert run.status == WorkflowStatus.WAITING
    await advance(flow_engine.engine, clock, timedelta(minutes=5))
    run = await run.refresh()
    assert run.status == WorkflowStatus.COMPLETED
    assert (run.data["label"], run.data["child_completed"]) == ("PKG-13", True)


@pytest.mark.parametrize("with_next", [True, False])
async def test_a_child_step_with_inputs_shows_in_the_inbox(
    flow_engine: FlowEngine, registry: WorkflowRegistry, with_next: bool
) -> None:
    """A child's human step is an ordinary task; completing it resumes the parent."""

    @workflow("review", registry=registry)
    class Review:
        @step(start=True, assignee="ann")
        def decide(self, verdict: str):
            return complete(verdict=verdict)

    @workflow("submission", registry=registry)
    class Submission:
        @step(start=True)
        def submit(self):
            return start_child(Review, next=self.record if with_next else None)

        @step()
        def record(self):
            result = child_result()
            assert result is not None
            return complete(verdict=result.data["verdict"])

    parent = await flow_engine.start("submission")
    (task,) = await flow_engine.engine.get_tasks(status=TaskStatus.PENDING)
    assert task.step_name == "decide"
    await flow_engine.engine.complete_human_task(task.instance_id, "decide", "ann", {"verdict": "accept"})
    parent = await parent.refresh()
    assert parent.status == WorkflowStatus.COMPLETED
    assert parent.data["verdict"] == "accept"


def test_start_child_takes_a_workflow_class_or_name(registry: WorkflowRegistry) -> None:
    shipping_class = shipping(registry)
    by_class = start_child(shipping_class, order_id=1)
    by_name: Any = start_child("shipping", order_id=1)
    assert by_class == by_name
    assert by_class.data == {"order_id": 1}
