"""Who may do what over HTTP: JWT and session users, tenants, admins, completed_by, CSRF."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jwt
from litestar import Litestar, Request, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from tests.web.conftest import PREFIX, make_app

from flowstar import User
from flowstar.web import JWTUserProvider, SessionUserProvider, UserDirectory
from flowstar.web.auth import SIGN_IN_COOKIE
from flowstar.web.events import event_messages

KEY = "jwt-test-key-of-at-least-thirty-two-bytes"
USERS = UserDirectory.demo()


def _bearer(user_id: str) -> dict[str, str]:
    user = USERS.get(user_id)
    assert user is not None
    claims = {"sub": user.id, "groups": sorted(user.groups), "tenant_id": user.tenant_id, "is_admin": user.is_admin}
    return {"Authorization": "Bearer " + jwt.encode(claims, KEY, algorithm="HS256")}


async def _start_as(client: AsyncTestClient[Litestar], user_id: str) -> tuple[str, str]:
    body = {"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}}
    started = await client.post(f"{PREFIX}/instances", json=body, headers=_bearer(user_id))
    assert started.status_code == 200, started.text
    instance_id = started.json()["id"]
    tasks = await client.get(f"{PREFIX}/tasks", params={"instance_id": instance_id}, headers=_bearer("bob"))
    (task,) = tasks.json()
    return instance_id, task["id"]


def test_directory_checks_argon2_hashes() -> None:
    alice = USERS.authenticate("alice", "alice")
    assert alice is not None
    assert alice.tenant_id == "acme"
    assert USERS.authenticate("alice", "wrong") is None
    assert USERS.authenticate("nobody", "x") is None
    admin = USERS.get("admin")
    assert admin is not None
    assert admin.is_admin


async def test_jwt_users_see_and_complete_only_their_tasks() -> None:
    app, _ = make_app(user_provider=JWTUserProvider(KEY))
    async with AsyncTestClient(app) as client:
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 401
        forged = {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "bob"}, "another-key-of-at-least-thirty-two-bytes", algorithm="HS256")
        }
        assert (await client.get(f"{PREFIX}/tasks", headers=forged)).status_code == 401
        instance_id, task_id = await _start_as(client, "alice")
        assert (await client.get(f"{PREFIX}/tasks", headers=_bearer("alice"))).json() == []
        assert (await client.get(f"{PREFIX}/tasks/{task_id}", headers=_bearer("alice"))).status_code == 403
        # Another tenant's ids do not exist for the user.
        assert (await client.get(f"{PREFIX}/tasks/{task_id}", headers=_bearer("dave"))).status_code == 404
        assert (await client.get(f"{PREFIX}/instances/{instance_id}", headers=_bearer("dave"))).status_code == 404
        assert (await client.get(f"{PREFIX}/instances", headers=_bearer("dave"))).json() == []
        url = f"{PREFIX}/tasks/{task_id}/complete"
        data = {"output_data": {"decision": "approve"}}
        assert (await client.post(url, json=data, headers=_bearer("alice"))).status_code == 403
        other = {**data, "completed_by": "alice"}
        assert (await client.post(url, json=other, headers=_bearer("bob"))).status_code == 403
        done = await client.post(url, json=data, headers=_bearer("bob"))
        assert done.status_code == 200
        history = (await client.get(f"{PREFIX}/instances/{instance_id}", headers=_bearer("bob"))).json()["history"]
        assert [r["completed_by"] for r in history if r["step_name"] == "manager_approval"] == ["bob"]


async def test_admin_routes_need_an_admin() -> None:
    app, _ = make_app(user_provider=JWTUserProvider(KEY))
    async with AsyncTestClient(app) as client:
        instance_id, _ = await _start_as(client, "alice")
        url = f"{PREFIX}/instances/{instance_id}/cancel"
        assert (await client.post(url, json={"reason": "x"}, headers=_bearer("bob"))).status_code == 403
        canceled = await client.post(url, json={"reason": "x"}, headers=_bearer("admin"))
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled"


@post("/login")
async def login(request: Request[Any, Any, Any], data: JSONBody[dict[str, str]]) -> dict[str, str]:
    user = USERS.authenticate(data["username"], data["password"])
    assert user is not None
    request.set_session({"user_id": user.id})
    return {"id": user.id}


async def test_session_sign_in_and_csrf_header() -> None:
    directory = USERS
    app, _ = make_app(user_directory=directory)
    app.register(login)
    async with AsyncTestClient(app) as client:
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 401
        # The first safe request sets the CSRF cookie; unsafe ones must echo it in x-csrftoken.
        token = client.cookies.get("csrftoken")
        assert token
        assert (await client.post("/login", json={"username": "bob", "password": "bob"})).status_code == 403
        signed_in = await client.post(
            "/login", json={"username": "bob", "password": "bob"}, headers={"x-csrftoken": token}
        )
        assert signed_in.status_code == 201
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 200
        body = {"definition_name": "expense_approval", "input_data": {"amount": 5000, "manager": "bob"}}
        assert (await client.post(f"{PREFIX}/instances", json=body)).status_code == 403
        started = await client.post(f"{PREFIX}/instances", json=body, headers={"x-csrftoken": token})
        assert started.status_code == 200
        assert started.json()["created_by"] == "bob"
    assert isinstance(app.plugins.get("WorkflowWebPlugin").config.user_provider, SessionUserProvider)


async def test_event_feed_is_scoped_to_the_user() -> None:
    _, engine = make_app()
    bob = USERS.get("bob")
    alice = USERS.get("alice")
    assert bob is not None
    assert alice is not None

    async def first_task_event(user: User) -> str:
        async for message in event_messages(engine, user):
            if message.event == "HumanTaskCreated":
                return str(message.data)
        raise AssertionError("feed ended")

    bob_feed = asyncio.create_task(first_task_event(bob))
    alice_feed = asyncio.create_task(first_task_event(alice))
    await asyncio.sleep(0)
    instance = await engine.start_workflow("expense_approval", {"amount": 5000, "manager": "bob"}, tenant_id="acme")
    # A second task, for alice: her first task event must be this one, not bob's.
    second = await engine.start_workflow("expense_approval", {"amount": 5000, "manager": "alice"}, tenant_id="acme")
    bob_data = await asyncio.wait_for(bob_feed, 5)
    alice_data = await asyncio.wait_for(alice_feed, 5)
    assert str(instance.id) in bob_data
    assert str(second.id) in alice_data
    assert str(instance.id) not in alice_data


async def test_the_instance_list_holds_only_what_the_user_may_open() -> None:
    app, _ = make_app(user_provider=JWTUserProvider(KEY))
    async with AsyncTestClient(app) as client:
        carols, _ = await _start_as(client, "carol")
        alices, _ = await _start_as(client, "alice")

        async def listed(user_id: str, **params: str) -> list[str]:
            response = await client.get(f"{PREFIX}/instances", params=params, headers=_bearer(user_id))
            assert response.status_code == 200, response.text
            return [i["id"] for i in response.json()]

        # alice may not open carol's instance (403), so her list does not show it either.
        assert (await client.get(f"{PREFIX}/instances/{carols}", headers=_bearer("alice"))).status_code == 403
        assert await listed("alice") == [alices]
        assert await listed("alice", created_by="carol") == []
        assert await listed("admin") == [alices, carols]
        assert await listed("admin", created_by="carol") == [carols]


async def test_a_planted_session_id_does_not_sign_in_whoever_planted_it() -> None:
    """Session fixation: the session id a browser already sends survives the sign-in, so the
    session is also tied to a proof cookie that only the signing-in browser received."""
    app, _ = make_app(user_directory=USERS, enable_ui=True)
    ui = app.plugins.get("WorkflowWebPlugin").config.ui_path
    async with AsyncTestClient(app) as client:

        async def sign_in(user: str) -> None:
            page = await client.get(f"{ui}/login")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            form = {"username": user, "password": user, "_csrf_token": token.group(1)}
            assert (await client.post(f"{ui}/login", data=form, follow_redirects=False)).status_code == 303

        def browser(**cookies: str) -> None:
            client.cookies.clear()
            for name, value in cookies.items():
                client.cookies.set(name, value, domain="testserver.local", path="/")

        await sign_in("alice")  # the attacker's own session: its id is what gets planted
        planted, attackers_proof = client.cookies.get("session"), client.cookies.get(SIGN_IN_COOKIE)
        assert planted
        assert attackers_proof
        browser(session=planted)  # the victim's browser, carrying the planted id
        await sign_in("bob")
        assert client.cookies.get("session") == planted  # the id itself is not renewed
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 200
        victims_proof = client.cookies.get(SIGN_IN_COOKIE)
        assert victims_proof
        assert victims_proof != attackers_proof

        # The attacker holds the session id, not the proof the victim's sign-in set.
        for cookies in ({"session": planted}, {"session": planted, SIGN_IN_COOKIE: attackers_proof}):
            browser(**cookies)
            assert (await client.get(f"{PREFIX}/tasks")).status_code == 401
            assert (await client.get(f"{ui}/", follow_redirects=False)).headers["location"] == f"{ui}/login"

        # Signing out drops the proof: afterwards the session id alone is nobody.
        browser(session=planted, **{SIGN_IN_COOKIE: victims_proof})
        page = await client.get(f"{ui}/")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed_out = await client.post(f"{ui}/logout", data={"_csrf_token": token.group(1)}, follow_redirects=False)
        assert signed_out.status_code == 303
        assert client.cookies.get(SIGN_IN_COOKIE) is None
        assert (await client.get(f"{PREFIX}/tasks")).status_code == 401
