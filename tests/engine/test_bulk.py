"""Bulk operations on every store: cancel, retry and reassign what a filter matches, once each."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from flowstar import (
    BaseHumanStep,
    ManualClock,
    PermissionDeniedError,
    TaskStatus,
    User,
    ValidationError,
    WorkflowContext,
    WorkflowStatus,
)
from flowstar.engine.bulk import STALE_AFTER
from flowstar.model.bulk import BulkFilter, BulkOperation, BulkRequest
from flowstar.model.errors import BulkOperationNotFoundError
from flowstar.model.waits import SignalStep
from tests.unit.helpers import Fn, Set, linear

# More than one page (500) of items, so that the keyset iteration and its cursor are used.
MANY = 620


def _waiting(name: str = "parked") -> Any:
    return linear(name, SignalStep("hold"), Set("done"))


async def _start(engine: Any, workflow: str, count: int, **kwargs: Any) -> list[str]:
    ids: list[str] = []
    for chunk in range(0, count, 50):
        started = await asyncio.gather(
            *(engine.start_workflow(workflow, **kwargs) for _ in range(min(50, count - chunk)))
        )
        ids.extend(str(i.id) for i in started)
    return ids


async def _statuses(engine: Any, ids: list[str]) -> Counter[WorkflowStatus]:
    return Counter([(await engine.get_instance(i)).status for i in ids])


async def test_a_bulk_cancel_cancels_every_match_once(make_engine: Any) -> None:
    engine = make_engine(_waiting(), _waiting("other"))
    ids = await _start(engine, "parked", MANY)
    others = await _start(engine, "other", 5)
    request = BulkRequest(kind="cancel", filter=BulkFilter(workflow="parked"), reason="cleanup")
    assert await engine.bulk.count(request) == MANY  # the dry run acts on nothing
    assert (await _statuses(engine, ids))[WorkflowStatus.WAITING] == MANY

    operation = await engine.bulk.submit(request, created_by="ops")
    assert operation.total == MANY
    done = await engine.bulk.wait(operation.id)
    assert (done.status, done.acted, done.skipped, done.failed) == ("completed", MANY, 0, 0)
    assert await _statuses(engine, ids) == Counter({WorkflowStatus.CANCELED: MANY})
    assert await _statuses(engine, others) == Counter({WorkflowStatus.WAITING: 5})
    assert (await engine.get_instance(ids[0])).error == "cleanup"
    assert (await engine.bulk.get(operation.id)).acted == MANY  # stored, readable from anywhere

    # The same request once more: nothing is left to cancel.
    again = await engine.bulk.submit(request)
    assert again.id != operation.id
    assert again.total == 0
    assert (await engine.bulk.wait(again.id)).acted == 0


async def test_a_re_sent_request_returns_the_first_operation(make_engine: Any) -> None:
    engine = make_engine(_waiting())
    await _start(engine, "parked", 3)
    request = BulkRequest(kind="cancel", filter=BulkFilter(workflow="parked"))
    first = await engine.bulk.submit(request, run=False)
    assert (await engine.bulk.submit(request)).id == first.id  # still pending: the same one
    keyed = await engine.bulk.submit(request, idempotency_key="cleanup-1", run=False)
    assert keyed.id == first.id  # the running one, whatever the key
    await engine.bulk.run(first.id)
    by_key = BulkRequest(kind="cancel", filter=BulkFilter(workflow="parked"), reason="with a key")
    one = await engine.bulk.submit(by_key, idempotency_key="cleanup-2")
    await engine.bulk.wait(one.id)
    assert (await engine.bulk.submit(by_key, idempotency_key="cleanup-2")).id == one.id  # finished, same key


async def test_a_bulk_retry_runs_the_failed_instances_again(make_engine: Any) -> None:
    broken = {"on": True}

    def flaky(context: WorkflowContext) -> None:
        if broken["on"]:
            raise RuntimeError("the service is down")
        context.set("charged", True)

    engine = make_engine(linear("charge", Set("start"), Fn("charge", flaky), Set("done")))
    ids = await _start(engine, "charge", 40)
    assert await _statuses(engine, ids) == Counter({WorkflowStatus.FAILED: 40})
    broken["on"] = False
    operation = await engine.bulk.submit(BulkRequest(kind="retry", filter=BulkFilter(workflow="charge")))
    done = await engine.bulk.wait(operation.id)
    assert (done.acted, done.skipped, done.failed) == (40, 0, 0)
    assert await _statuses(engine, ids) == Counter({WorkflowStatus.COMPLETED: 40})
    history = [r.step_name for r in await engine.get_history(ids[0])]
    assert history.count("charge") == 2  # failed once, retried once


async def test_a_bulk_reassign_moves_the_matching_tasks(make_engine: Any) -> None:
    engine = make_engine(linear("review", BaseHumanStep("check", assignee_group="clerks"), Set("done")))
    await _start(engine, "review", 30)
    tasks = (await engine.find_tasks(group="clerks", limit=100)).items
    await engine.reassign_task(tasks[0].id, "bob", assignee_group="clerks")  # already bob's
    request = BulkRequest(kind="reassign", filter=BulkFilter(group="clerks"), to_user="bob", reason="ann is away")
    done = await engine.bulk.wait((await engine.bulk.submit(request)).id)
    assert (done.acted, done.skipped) == (29, 1)
    owners = Counter([(await engine.get_task(t.id)).assignee_id for t in tasks])
    assert owners == Counter({"bob": 30})
    audit = await engine.task_audit(tasks[1].id)
    assert [(a.action, a.details.get("reason")) for a in audit if a.action == "reassigned"] == [
        ("reassigned", "ann is away")
    ]


async def test_an_interrupted_operation_resumes_where_it_was(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(_waiting(), clock=clock)
    ids = await _start(engine, "parked", MANY)
    operation = await engine.bulk.submit(BulkRequest(kind="cancel"), run=False)

    def crash_after_the_first_page(progress: BulkOperation) -> None:
        raise asyncio.CancelledError  # the process stops right after saving a page

    with pytest.raises(asyncio.CancelledError):
        await engine.bulk.run(operation.id, crash_after_the_first_page)
    halfway = await engine.bulk.get(operation.id)
    assert (halfway.status, halfway.acted) == ("running", 500)

    assert await engine.bulk.resume() == 0  # another process may still run it
    clock.advance(STALE_AFTER * 2)
    assert await engine.bulk.resume() == 1
    done = await engine.bulk.wait(operation.id)
    assert (done.status, done.acted, done.skipped) == ("completed", MANY, 0)
    assert await _statuses(engine, ids) == Counter({WorkflowStatus.CANCELED: MANY})


async def test_an_operation_on_listed_ids(make_engine: Any) -> None:
    engine = make_engine(_waiting())
    ids = await _start(engine, "parked", 4)
    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=(ids[0], ids[1], ids[1], "0" * 32)))
    done = await engine.bulk.wait((await engine.bulk.submit(request)).id)
    assert (done.acted, done.skipped, done.failed) == (2, 1, 1)
    assert "no such instance" in done.errors[0]
    assert await _statuses(engine, ids) == Counter({WorkflowStatus.CANCELED: 2, WorkflowStatus.WAITING: 2})


async def test_bulk_operations_are_for_admins_of_their_tenant(make_engine: Any) -> None:
    engine = make_engine(_waiting())
    mine = await _start(engine, "parked", 3, tenant_id="acme")
    theirs = await _start(engine, "parked", 2, tenant_id="globex")
    admin = User(id="root", tenant_id="acme", is_admin=True)
    with pytest.raises(PermissionDeniedError):
        await engine.bulk.submit(BulkRequest(kind="cancel"), user=User(id="ann", tenant_id="acme"))
    operation = await engine.bulk.submit(BulkRequest(kind="cancel"), user=admin)
    assert (await engine.bulk.wait(operation.id)).acted == 3
    assert await _statuses(engine, mine) == Counter({WorkflowStatus.CANCELED: 3})
    assert await _statuses(engine, theirs) == Counter({WorkflowStatus.WAITING: 2})
    other_admin = User(id="boss", tenant_id="globex", is_admin=True)
    with pytest.raises(BulkOperationNotFoundError):
        await engine.bulk.get(operation.id, user=other_admin)
    listed = BulkRequest(kind="cancel", filter=BulkFilter(ids=tuple(theirs)))
    done = await engine.bulk.wait((await engine.bulk.submit(listed, user=admin)).id)
    assert (done.acted, done.failed) == (0, 2)  # another tenant's ids are unknown here


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (BulkRequest(kind="reassign"), "needs to_user or to_group"),
        (BulkRequest(kind="cancel", to_user="bob"), "are for a bulk reassign"),
        (BulkRequest(kind="cancel", from_step="x"), "from_step is for a bulk retry"),
        (BulkRequest(kind="retry", filter=BulkFilter(statuses=("lost",))), "unknown status 'lost'"),
        (BulkRequest(kind="reassign", to_user="b", filter=BulkFilter(statuses=("completed",))), "unknown status"),
    ],
)
async def test_bad_requests_are_refused(make_engine: Any, request_: BulkRequest, message: str) -> None:
    engine = make_engine(_waiting())
    with pytest.raises(ValidationError, match=message):
        await engine.bulk.submit(request_)


async def test_an_unknown_operation_is_not_found(make_engine: Any) -> None:
    engine = make_engine(_waiting())
    with pytest.raises(BulkOperationNotFoundError):
        await engine.bulk.get("0" * 32)
    with pytest.raises(BulkOperationNotFoundError):
        await engine.bulk.get("not-a-uuid")


def test_task_status_is_the_reassigns_only() -> None:
    assert BulkRequest(kind="reassign", to_user="x").statuses() == (TaskStatus.PENDING.value,)
