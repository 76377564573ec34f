"""Signals on SAQ workers: a waiting instance wakes, a signal sent before the wait is not lost,
and a code-first parent waits for its child workflow."""

from __future__ import annotations

from tests.integration.saq_support import SaqEnv, inprocess_worker, wait_for

from flowstar import WorkflowStatus
from flowstar.engine.ids import new_id
from flowstar.model.children import CHILD_PREFIX
from flowstar.model.state import SignalEntry


async def test_a_signal_wakes_an_instance_waiting_on_a_worker(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        started = await client.start_workflow("signalled", {"delay": 0})

        async def at_the_signal() -> bool:
            return (await client.get_instance(started.id)).waiting_for == ["signal:go"]

        await wait_for(at_the_signal, within=20, what="the instance to wait for the signal")
        assert await client.signal("go", {"by": "api"}) == 1
        done = await client.wait_for_status(started.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error
    assert done.context.data["by"] == "api"


async def test_a_signal_sent_while_the_instance_is_busy_elsewhere_is_delivered(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        started = await client.start_workflow("signalled", {"delay": 1})
        # The worker is on the one-second timer: nobody waits for the signal yet.
        assert await client.signal("go", {"early": True}) == 0
        done = await client.wait_for_status(started.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error
    assert done.context.data["early"] is True


async def test_a_code_first_parent_waits_for_its_child_on_a_worker(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        parent = await client.start_workflow("child_parent")

        async def waiting_for_child() -> bool:
            waits = (await client.get_instance(parent.id)).waiting_for
            return bool(waits) and waits[0].startswith("signal:" + CHILD_PREFIX)

        await wait_for(waiting_for_child, within=20, what="the parent to wait for its child")
        (wait,) = (await client.get_instance(parent.id)).waiting_for
        child_id = wait.removeprefix("signal:" + CHILD_PREFIX)

        async def child_at_the_signal() -> bool:
            return (await client.get_instance(child_id)).waiting_for == ["signal:go"]

        await wait_for(child_at_the_signal, within=20, what="the child to wait for its signal")
        assert await client.signal("go", instance_id=child_id) == 1
        done = await client.wait_for_status(parent.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error
    assert done.context.data["child_status"] == "completed"


async def test_the_reconciler_finishes_a_delivery_a_crash_cut_short(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        started = await client.start_workflow("signalled", {"delay": 0})

        async def at_the_signal() -> bool:
            return (await client.get_instance(started.id)).waiting_for == ["signal:go"]

        await wait_for(at_the_signal, within=20, what="the instance to wait for the signal")
        # What a process that logged the signal and died before waking anybody leaves behind.
        entry = SignalEntry(
            id=new_id(), kind="signal", name="go", payload={"late": True}, recorded_at=client.clock.now()
        )
        await client.store.record_signal(entry)
        done = await client.wait_for_status(started.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error
    assert done.context.data["late"] is True
