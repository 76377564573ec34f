"""Keyset pages of tasks and instances (``find_tasks``, ``find_instances``) on every store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flowstar import BaseHumanStep, ManualClock, User, ValidationError, WorkflowStatus
from flowstar.model.enums import TaskStatus
from flowstar.model.pages import encode_cursor
from tests.unit.helpers import Set, linear


def _definitions() -> list[Any]:
    review = BaseHumanStep("review", assignee_key="who", assignee_group="reviewers", due_in=timedelta(hours=1))
    pool = BaseHumanStep("pick", assignee_group="clerks", priority=80)
    return [linear("review", Set("prep", ready=True), review), linear("pool", pool)]


async def _all_pages(call: Any, **filters: Any) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor = None
    while True:
        page = await call(cursor=cursor, **filters)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def _started(make_engine: Any, clock: ManualClock) -> tuple[Any, list[Any]]:
    engine = make_engine(*_definitions(), clock=clock)
    started = []
    for n in range(7):
        tenant = "t1" if n < 5 else "t2"
        started.append(
            await engine.start_workflow("review", {"who": f"u{n % 2}"}, tenant_id=tenant, created_by=f"c{n % 3}")
        )
        # Two instances share each instant: the id breaks the tie.
        if n % 2:
            clock.advance(timedelta(minutes=1))
    started.append(await engine.start_workflow("pool", {}, tenant_id="t1"))
    return engine, started


async def test_task_pages_walk_every_match_once_in_order(make_engine: Any, clock: ManualClock) -> None:
    engine, started = await _started(make_engine, clock)
    pages = await _all_pages(engine.find_tasks, status=TaskStatus.PENDING, limit=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    tasks = [t for p in pages for t in p]
    assert [t.instance_id for t in tasks] == [str(i.id) for i in started]
    assert [(t.created_at, t.id) for t in tasks] == sorted((t.created_at, t.id) for t in tasks)
    exact = await engine.find_tasks(limit=8)
    assert (len(exact.items), exact.next_cursor) == (8, None)


async def test_task_filters(make_engine: Any, clock: ManualClock) -> None:
    engine, started = await _started(make_engine, clock)
    ids = [str(i.id) for i in started]

    async def found(**filters: Any) -> list[str]:
        return [t.instance_id for t in (await engine.find_tasks(**filters)).items]

    assert await found(assignee_id="u1") == [ids[1], ids[3], ids[5]]
    assert await found(group="clerks") == [ids[7]]
    assert await found(workflow_name="pool") == [ids[7]]
    assert await found(instance_id=started[2].id) == [ids[2]]
    assert await found(claimable=True) == [ids[7]]
    assert await found(min_priority=80) == [ids[7]]
    assert await found(min_priority=50) == ids
    assert await found(min_priority=81) == []
    assert await found(claimable=False) == ids[:7]
    # Due an hour after creation; the clock moved three minutes in all.
    assert await found(due_before=started[0].started_at + timedelta(minutes=62)) == ids[:4]
    assert await found(overdue=True) == []
    clock.advance(timedelta(minutes=57, seconds=30))
    assert await found(overdue=True) == ids[:2]

    task = (await engine.find_tasks(instance_id=started[0].id)).items[0]
    await engine.complete_task(task.id, "u0", {})
    assert await found(status=TaskStatus.COMPLETED, completed_by="u0") == [ids[0]]
    assert await found(status=TaskStatus.COMPLETED, completed_by="u1") == []
    assert ids[0] not in await found(overdue=True)


async def test_user_sees_their_tasks_in_their_tenant(make_engine: Any, clock: ManualClock) -> None:
    engine, started = await _started(make_engine, clock)
    ids = [str(i.id) for i in started]

    async def inbox(user: User, **filters: Any) -> list[str]:
        return [
            t.instance_id for page in await _all_pages(engine.find_tasks, user=user, limit=2, **filters) for t in page
        ]

    assert await inbox(User(id="u0", tenant_id="t1")) == [ids[0], ids[2], ids[4]]
    assert await inbox(User(id="u1", tenant_id="t2")) == [ids[5]]
    assert await inbox(User(id="x", groups=frozenset({"clerks"}), tenant_id="t1")) == [ids[7]]
    both = User(id="u1", groups=frozenset({"clerks", "reviewers"}), tenant_id="t1")
    assert await inbox(both) == [ids[0], ids[1], ids[2], ids[3], ids[4], ids[7]]
    assert await inbox(both, group="clerks") == [ids[7]]
    assert await inbox(User(id="u0", groups=frozenset({"clerks"}), tenant_id="t3")) == []
    assert await inbox(User(id="boss", tenant_id="t1", is_admin=True)) == [
        ids[0],
        ids[1],
        ids[2],
        ids[3],
        ids[4],
        ids[7],
    ]


async def test_instance_pages_newest_first(make_engine: Any, clock: ManualClock) -> None:
    engine, started = await _started(make_engine, clock)
    newest_first = sorted(started, key=lambda i: (i.started_at, str(i.id)), reverse=True)
    pages = await _all_pages(engine.find_instances, limit=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i.id for p in pages for i in p] == [i.id for i in newest_first]

    async def found(**filters: Any) -> set[str]:
        return {str(i.id) for page in await _all_pages(engine.find_instances, limit=2, **filters) for i in page}

    ids = [str(i.id) for i in started]
    assert await found(workflow_name="pool") == {ids[7]}
    assert await found(created_by="c1") == {ids[1], ids[4]}
    assert await found(status=WorkflowStatus.WAITING) == set(ids)
    assert await found(status=[WorkflowStatus.COMPLETED, WorkflowStatus.FAILED]) == set()
    first = started[0].started_at
    assert await found(created_after=first + timedelta(minutes=1)) == set(ids[2:])
    assert await found(created_before=first + timedelta(minutes=1)) == {ids[0], ids[1]}
    # A user's list: the tenant's instances for an admin, the ones they started for anyone else.
    assert await found(user=User(id="anyone", tenant_id="t2", is_admin=True)) == {ids[5], ids[6]}
    assert await found(user=User(id="c2", tenant_id="t2")) == {ids[5]}
    assert await found(user=User(id="c2", tenant_id="t2"), created_by="c0") == set()
    assert await found(user=User(id="anyone", tenant_id="t2")) == set()
    assert await found(user=User(id="anyone", tenant_id="t9", is_admin=True)) == set()


async def test_bad_limits_and_cursors_are_refused(make_engine: Any, clock: ManualClock) -> None:
    engine, _ = await _started(make_engine, clock)
    for limit in (0, 501, -1):
        with pytest.raises(ValidationError, match="page size"):
            await engine.find_tasks(limit=limit)
        with pytest.raises(ValidationError, match="page size"):
            await engine.find_instances(limit=limit)
    task_cursor = (await engine.find_tasks(limit=1)).next_cursor
    instance_cursor = (await engine.find_instances(limit=1)).next_cursor
    assert task_cursor is not None
    assert instance_cursor is not None
    tampered = task_cursor[:-2] + ("AA" if task_cursor[-2:] != "AA" else "BB")
    for call, cursor in [
        (engine.find_tasks, tampered),
        (engine.find_tasks, instance_cursor),  # another list's cursor
        (engine.find_instances, task_cursor),
        (engine.find_tasks, "not a cursor!"),
        (engine.find_instances, ""),
    ]:
        with pytest.raises(ValidationError, match="cursor"):
            await call(cursor=cursor)


async def test_a_cursor_past_the_end_gives_an_empty_last_page(make_engine: Any, clock: ManualClock) -> None:
    engine, started = await _started(make_engine, clock)
    last = max((await engine.find_tasks(limit=100)).items, key=lambda t: (t.created_at, t.id))
    page = await engine.find_tasks(cursor=encode_cursor("tasks", (last.created_at, last.id)))
    assert (page.items, page.next_cursor) == ([], None)


async def test_inbox_includes_candidate_tasks(make_engine: Any, clock: ManualClock) -> None:
    vote = BaseHumanStep("vote", candidate_users=["cu"], candidate_groups=["cg"])
    engine = make_engine(*_definitions(), linear("vote", vote), clock=clock)
    ids = []
    for name, data in [("vote", {}), ("review", {"who": "cu"}), ("vote", {}), ("pool", {})]:
        ids.append(str((await engine.start_workflow(name, data, tenant_id="t1")).id))
        clock.advance(timedelta(seconds=1))
    await engine.start_workflow("vote", {}, tenant_id="t2")

    async def inbox(user: User) -> list[str]:
        return [t.instance_id for page in await _all_pages(engine.find_tasks, user=user, limit=1) for t in page]

    # Named as a candidate user, assigned, in a candidate group, in the assignee group.
    assert await inbox(User(id="cu", tenant_id="t1")) == ids[:3]
    assert await inbox(User(id="x", groups=frozenset({"cg"}), tenant_id="t1")) == [ids[0], ids[2]]
    assert await inbox(User(id="x", groups=frozenset({"cg", "clerks"}), tenant_id="t1")) == [ids[0], ids[2], ids[3]]
    assert await inbox(User(id="x", groups=frozenset({"other"}), tenant_id="t1")) == []
    assert len(await inbox(User(id="cu", tenant_id="t2"))) == 1
    claimable = await engine.find_tasks(claimable=True, workflow_name="vote", limit=10)
    assert len(claimable.items) == 3


async def test_a_claimed_task_stays_in_the_claimers_inbox(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(*_definitions(), clock=clock)
    started = await engine.start_workflow("pool", {}, tenant_id="t1")
    clerk = User(id="cl", groups=frozenset({"clerks"}), tenant_id="t1")
    task = (await engine.find_tasks(user=clerk)).items[0]
    assert [t.id for t in (await engine.find_tasks(claimable=True)).items] == [task.id]
    await engine.claim_task(task.id, user=clerk)
    # Claimed: no longer claimable, and found through claimed_by once out of the group.
    assert (await engine.find_tasks(claimable=True)).items == []
    assert [t.id for t in (await engine.find_tasks(claimable=False)).items] == [task.id]
    left_the_group = User(id="cl", tenant_id="t1")
    assert [t.instance_id for t in (await engine.find_tasks(user=left_the_group)).items] == [str(started.id)]
    assert (await engine.find_tasks(user=User(id="other", tenant_id="t1"))).items == []
