"""Tenant and creator: stored on instances, step records and tasks, and filtering queries."""

from __future__ import annotations

from typing import Any

from flowstar import BaseHumanStep
from tests.unit.helpers import Set, linear


async def test_tenant_and_creator_are_stored_and_filter_queries(make_engine: Any) -> None:
    approve = BaseHumanStep("approve", assignee="alice", assignee_group="managers")
    engine = make_engine(linear("tenanted", Set("prepare", prepared=True), approve))
    mine = [await engine.start_workflow("tenanted", tenant_id="t1", created_by="u1") for _ in range(3)]
    theirs = [await engine.start_workflow("tenanted", tenant_id="t2", created_by="u2") for _ in range(2)]

    for instance, tenant, user in [*((i, "t1", "u1") for i in mine), *((i, "t2", "u2") for i in theirs)]:
        assert (instance.tenant_id, instance.created_by) == (tenant, user)
        assert instance.context.tenant_id == tenant
        again = await engine.get_instance(instance.id)
        assert (again.tenant_id, again.created_by) == (tenant, user)
        assert {r.tenant_id for r in await engine.get_history(instance.id)} == {tenant}

    page, total = await engine.list_instances(tenant_id="t1")
    assert total == 3
    assert {i.id for i in page} == {i.id for i in mine}
    assert (await engine.list_instances(tenant_id="t2", created_by="u1")) == ([], 0)
    page, total = await engine.list_instances(tenant_id="t2", limit=1)
    assert (total, len(page)) == (2, 1)
    tasks = await engine.get_tasks(tenant_id="t2")
    assert {t.instance_id for t in tasks} == {str(i.id) for i in theirs}
    assert {t.tenant_id for t in tasks} == {"t2"}
    assert len(await engine.get_tasks(tenant_id="t1", assignee_id="alice")) == 3
    assert await engine.get_tasks(tenant_id="t3") == []
