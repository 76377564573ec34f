"""How-to (security and tenants): who may see and do what, enforced by the engine for every caller."""

from __future__ import annotations

import asyncio

# --8<-- [start:app]
from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar import LocalExecutionEngine, PermissionDeniedError, TaskNotFoundError, User
from flowstar.web import JWTUserProvider, WorkflowWebPlugin

from tutorial_human_task import registry
from web_apps import SECRET, token

engine = LocalExecutionEngine(registry)
app = Litestar(
    plugins=[
        WorkflowWebPlugin(
            engine=engine,
            user_provider=JWTUserProvider(key=SECRET, algorithms=["HS256"], audience="flowstar"),
        )
    ],
    on_shutdown=[engine.close],
)
# --8<-- [end:app]


def bearer(user: str, tenant: str, *groups: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(user, tenant_id=tenant, groups=list(groups), is_admin=admin)}


async def main() -> None:
    # --8<-- [start:engine]
    # In Python: pass user= to the engine's calls (None: a trusted back end).
    report = await engine.start_workflow("expense_report", {"amount": "300"}, tenant_id="acme", created_by="alice")
    (task,) = await engine.get_tasks(instance_id=report.id)
    dana = User(id="dana", groups=frozenset({"managers"}), tenant_id="globex")
    try:
        await engine.get_task(task.id, user=dana)
    except TaskNotFoundError:
        pass  # another tenant's task does not exist for her
    else:
        raise AssertionError("dana saw another tenant's task")
    try:
        await engine.complete_task(task.id, data={"decision": "approved"}, user=User(id="erin", tenant_id="acme"))
    except PermissionDeniedError:
        pass  # not hers: neither assigned to her, nor her group's
    else:
        raise AssertionError("erin completed a task that is not hers")
    # --8<-- [end:engine]

    alice, bob = bearer("alice", "acme", "employees"), bearer("bob", "acme", "managers")
    carol, dave = bearer("carol", "acme", "finance"), bearer("dave", "globex", "managers")
    async with AsyncTestClient(app) as http:
        # --8<-- [start:http]
        body = {"definition_name": "expense_report", "input_data": {"amount": "900"}}
        report = (await http.post("/workflows/instances", json=body, headers=alice)).json()
        assert (report["tenant_id"], report["created_by"]) == ("acme", "alice")  # from the token

        mine = await http.get("/workflows/tasks", params={"instance_id": report["id"]}, headers=bob)
        (task,) = mine.json()  # the managers' task
        assert (await http.get(f"/workflows/tasks/{task['id']}", headers=carol)).status_code == 403
        assert (await http.get(f"/workflows/tasks/{task['id']}", headers=dave)).status_code == 404
        assert (await http.get("/workflows/tasks", headers=dave)).json() == []  # another tenant

        assert (await http.post(f"/workflows/tasks/{task['id']}/claim", headers=bob)).status_code == 200
        done = await http.post(
            f"/workflows/tasks/{task['id']}/complete", json={"output_data": {"decision": "approved"}}, headers=bob
        )
        assert done.json()["status"] == "completed"
        cancel = await http.post(f"/workflows/instances/{report['id']}/cancel", json={"reason": "x"}, headers=bob)
        assert cancel.status_code == 403  # cancel and retry are for admins
        # --8<-- [end:http]
    # the app's shutdown closed the engine


if __name__ == "__main__":
    asyncio.run(main())
