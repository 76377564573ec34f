"""docs/inbox.md: the inbox in an app, with the demo's sign-in."""

from __future__ import annotations

# --8<-- [start:app]
from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar.web import UserDirectory, WorkflowWebPlugin

app = Litestar(plugins=[WorkflowWebPlugin(user_directory=UserDirectory.demo())])
# http://127.0.0.1:8000/workflows/ui/
# --8<-- [end:app]


async def main() -> None:
    async with AsyncTestClient(app) as client:
        login = await client.get("/workflows/ui/login")
        assert login.status_code == 200
        assert "Sign in" in login.text
        inbox = await client.get("/workflows/ui/", follow_redirects=False)
        assert inbox.headers["location"] == "/workflows/ui/login"  # the inbox needs a sign-in
