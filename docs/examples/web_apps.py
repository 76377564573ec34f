"""docs/web.md: the plugin in an app, with the session sign-in, and with bearer JWTs."""

from __future__ import annotations

import asyncio
import time

import jwt

# --8<-- [start:app]
from litestar import Litestar
from litestar.testing import AsyncTestClient

from flowstar.web import WorkflowWebPlugin

app = Litestar(plugins=[WorkflowWebPlugin(path_prefix="/api/workflows")])
# --8<-- [end:app]

SECRET = "a-long-random-secret-shared-with-the-identity-provider"  # noqa: S105 - HS256; RS256 takes the public key


def session_plugin() -> WorkflowWebPlugin:
    # --8<-- [start:session]
    from flowstar.web import UserDirectory, WorkflowWebPlugin

    plugin = WorkflowWebPlugin(user_directory=UserDirectory.demo())
    # --8<-- [end:session]
    return plugin


def jwt_plugin() -> WorkflowWebPlugin:
    # --8<-- [start:jwt]
    from flowstar.web import JWTUserProvider, WorkflowWebPlugin

    plugin = WorkflowWebPlugin(user_provider=JWTUserProvider(key=SECRET, algorithms=["HS256"], audience="flowstar"))
    # --8<-- [end:jwt]
    return plugin


def token(user_id: str, **claims: object) -> str:
    """What an identity provider would issue."""
    body = {"sub": user_id, "aud": "flowstar", "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def main() -> None:
    # With no engine=, the plugin builds one from FLOWSTAR_* (here: a SQLite file, migrated
    # at the first request, and the demo workflows).
    async with AsyncTestClient(app) as client:
        names = {d["name"] for d in (await client.get("/api/workflows/definitions")).json()}
        assert "expense_approval" in names
        assert (await client.get("/schema/openapi.json")).status_code == 200

    async with AsyncTestClient(Litestar(plugins=[session_plugin()])) as client:
        assert (await client.get("/workflows/tasks")).status_code == 401  # nobody signed in
        assert (await client.get("/workflows/ui/login")).status_code == 200

    async with AsyncTestClient(Litestar(plugins=[jwt_plugin()])) as client:
        bob = {"Authorization": f"Bearer {token('bob', groups=['managers'], tenant_id='acme')}"}
        assert (await client.get("/workflows/tasks", headers=bob)).status_code == 200
        expired = {"Authorization": f"Bearer {token('bob', exp=int(time.time()) - 10)}"}
        assert (await client.get("/workflows/tasks", headers=expired)).status_code == 401


if __name__ == "__main__":
    asyncio.run(main())
