"""docs/pagination.md: a user's open tasks, page by page, by keyset cursor."""

from __future__ import annotations

import asyncio

from flowstar import LocalExecutionEngine, TaskStatus, User, ValidationError

from tutorial_human_task import registry


async def main() -> None:
    engine = LocalExecutionEngine(registry)
    for n in range(120):  # 120 reports for the managers to review
        await engine.start_workflow("expense_report", {"amount": str(1000 + n)}, tenant_id="acme")
    user = User(id="bob", groups=frozenset({"managers"}), tenant_id="acme")

    # --8<-- [start:pages]
    page = await engine.find_tasks(user=user, status=TaskStatus.PENDING, limit=50)
    tasks = page.items  # list[HumanTask], at most 50
    cursor = page.next_cursor  # str | None: pass it as cursor= for the next page; None on the last page
    more = await engine.find_tasks(user=user, status=TaskStatus.PENDING, limit=50, cursor=cursor)
    # --8<-- [end:pages]

    last = await engine.find_tasks(user=user, status=TaskStatus.PENDING, limit=50, cursor=more.next_cursor)
    assert [len(tasks), len(more.items), len(last.items)] == [50, 50, 20]
    assert last.next_cursor is None
    ids = [t.id for p in (page, more, last) for t in p.items]
    assert len(set(ids)) == 120  # no task twice, none left out
    assert [t.created_at for t in page.items] == sorted(t.created_at for t in page.items)  # oldest first

    outsider = User(id="dave", groups=frozenset({"managers"}), tenant_id="globex")
    assert (await engine.find_tasks(user=outsider)).items == []  # another tenant's tasks do not exist for him
    try:
        await engine.find_tasks(user=user, cursor=page.next_cursor[:-2] + "xx")
    except ValidationError:
        pass  # an edited cursor is refused (422 over HTTP)
    else:
        raise AssertionError("an edited cursor was accepted")
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
