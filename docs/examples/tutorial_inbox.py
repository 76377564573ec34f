"""Tutorial 3: the expense workflow behind the task inbox, in a Litestar app.

Serve it: ``uvicorn tutorial_inbox:app --app-dir docs/examples`` and open
http://127.0.0.1:8000/workflows/ui/ (sign in as ``bob``, password ``bob``).
``main()`` clicks through the same pages with Litestar's test client.
"""

from __future__ import annotations

import asyncio
import re

# --8<-- [start:app]
from litestar import Litestar

from flowstar import LocalExecutionEngine, WorkflowStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

from tutorial_human_task import registry

engine = LocalExecutionEngine(registry)


async def sample_report() -> None:
    """Give the managers something to review as soon as the app is up."""
    await engine.start_workflow(
        "expense_report", {"employee": "alice", "amount": "1200"}, tenant_id="acme", created_by="alice"
    )


app = Litestar(
    plugins=[WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo())],
    on_startup=[sample_report],
    on_shutdown=[engine.close],  # an engine passed in is the application's to close
)
# --8<-- [end:app]


def csrf_token(page: str) -> str:
    """The CSRF token every form of the inbox carries."""
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match is not None, "the page has no form"
    return match.group(1)


async def main() -> None:
    from litestar.testing import AsyncTestClient

    # --8<-- [start:clicks]
    async with AsyncTestClient(app) as browser:
        login = await browser.get("/workflows/ui/login")
        await browser.post(
            "/workflows/ui/login",
            data={"username": "bob", "password": "bob", "_csrf_token": csrf_token(login.text)},
        )
        (task,) = await engine.get_tasks(tenant_id="acme")
        inbox = await browser.get("/workflows/ui/?tab=group")  # my groups' tasks
        assert f"/workflows/ui/tasks/{task.id}" in inbox.text

        page = await browser.get(f"/workflows/ui/tasks/{task.id}")
        await browser.post(f"/workflows/ui/tasks/{task.id}/claim", data={"_csrf_token": csrf_token(page.text)})
        page = await browser.get(f"/workflows/ui/tasks/{task.id}")
        done = await browser.post(
            f"/workflows/ui/tasks/{task.id}",
            data={"decision": "approved", "comment": "fine", "_csrf_token": csrf_token(page.text)},
        )
        assert done.status_code == 200  # redirected back to the inbox

    report = await engine.get_instance(task.instance_id)
    assert report.status is WorkflowStatus.COMPLETED
    assert report.context.get("decision") == "approved"
    # --8<-- [end:clicks]


if __name__ == "__main__":
    asyncio.run(main())
