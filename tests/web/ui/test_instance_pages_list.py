"""The instance list page through the plugin: the tenant's instances for an admin, one's own
for anyone else, the workflow, status and start time filters, keyset pages, bad filters."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Fn, Set, linear
from tests.web.ui.test_pages import _sign_in

from flowstar import BaseHumanStep, EventBus, LocalExecutionEngine, ManualClock, WorkflowContext, WorkflowRegistry
from flowstar.model.enums import WorkflowStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

UI = "/workflows/ui"
PAGE_SIZE = 50  # find_instances' default page size, which the list uses


class Flaky(Fn):
    """A step that fails on its first run only (a failed instance that a retry completes)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, self._run)

    def _run(self, context: WorkflowContext) -> None:
        if self.runs == 1:
            raise RuntimeError("the card was declined")
        context.set("charged", True)


def build_engine(clock: ManualClock, bus: EventBus | None = None) -> LocalExecutionEngine:
    """expense waits for its assignee; leave completes at once; charge fails on its first run."""
    registry = WorkflowRegistry()
    registry.register_definition(
        linear("expense", BaseHumanStep("approve", title="Approve", assignee_key="who"), Set("done"))
    )
    registry.register_definition(linear("leave", Set("granted", ok=True)))
    registry.register_definition(linear("charge", Set("prepare", ready=True), Flaky("pay"), Set("receipt")))
    return LocalExecutionEngine(registry, event_bus=bus, clock=clock)


@pytest.fixture
async def app_engine(clock: ManualClock) -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    engine = build_engine(clock)
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="i" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


@asynccontextmanager
async def signed_in(app: Litestar, user: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        await _sign_in(client, user)
        yield client


def listed_ids(page: str) -> list[str]:
    """The instance ids the list's rows link to, in the order shown."""
    table = page.split('id="instances"', 1)[1].split("</table>", 1)[0] if 'id="instances"' in page else ""
    return re.findall(r'href="/workflows/ui/instances/([0-9a-f-]{36})"', table)


def next_link(page: str) -> str | None:
    match = re.search(r'<a id="next-page" href="([^"]+)"', page)
    return match.group(1).replace("&amp;", "&") if match else None


async def _list(client: AsyncTestClient[Litestar], query: str = "") -> str:
    response = await client.get(f"{UI}/instances{query}")
    assert response.status_code == 200, response.text
    return response.text


async def test_an_admin_sees_their_tenants_instances_newest_first(app_engine: Any, clock: ManualClock) -> None:
    app, engine = app_engine
    first = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme", created_by="bob")
    clock.advance(60)
    second = await engine.start_workflow("leave", {}, tenant_id="acme", created_by="alice")
    foreign = await engine.start_workflow("expense", {"who": "dave"}, tenant_id="globex", created_by="dave")
    async with signed_in(app, "admin") as client:
        page = await _list(client)
        assert listed_ids(page) == [str(second.id), str(first.id)]
        assert str(foreign.id) not in page
        row = page.split(f'href="{UI}/instances/{first.id}"', 1)[1].split("</tr>", 1)[0]
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        # workflow (the link), then status, current step, started by, started, updated
        assert cells == ["waiting", "approve", "bob", "2030-01-01 00:00", "2030-01-01 00:00"]
        assert f'<a href="{UI}/instances">Instances</a>' in page  # the nav links the list
    async with signed_in(app, "dave") as client:
        assert listed_ids(await _list(client)) == [str(foreign.id)]


async def test_anyone_else_sees_the_instances_they_started(app_engine: Any) -> None:
    app, engine = app_engine
    mine = await engine.start_workflow("leave", {}, tenant_id="acme", created_by="alice")
    await engine.start_workflow("leave", {}, tenant_id="acme", created_by="bob")
    async with signed_in(app, "alice") as client:
        page = await _list(client)
        assert listed_ids(page) == [str(mine.id)]
        # every row listed opens
        assert (await client.get(f"{UI}/instances/{mine.id}")).status_code == 200


async def test_filters_by_status_and_workflow(app_engine: Any) -> None:
    app, engine = app_engine
    waiting = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    done = await engine.start_workflow("leave", {}, tenant_id="acme")
    failed = await engine.start_workflow("charge", {}, tenant_id="acme")
    assert (waiting.status, done.status, failed.status) == (
        WorkflowStatus.WAITING,
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
    )
    async with signed_in(app, "admin") as client:
        assert listed_ids(await _list(client, "?status=failed")) == [str(failed.id)]
        assert listed_ids(await _list(client, "?status=completed")) == [str(done.id)]
        assert listed_ids(await _list(client, "?workflow=expense")) == [str(waiting.id)]
        assert listed_ids(await _list(client, "?workflow=expense&status=completed")) == []
        page = await _list(client, "?workflow=leave&status=completed")
        assert listed_ids(page) == [str(done.id)]
        # the chosen filters stay selected in the form
        assert '<option value="leave" selected>' in page
        assert '<option value="completed" selected>' in page


async def test_filters_by_start_time(app_engine: Any, clock: ManualClock) -> None:
    app, engine = app_engine
    early = await engine.start_workflow("leave", {}, tenant_id="acme")
    clock.advance(timedelta(days=2))
    late = await engine.start_workflow("leave", {}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        assert listed_ids(await _list(client, "?created_after=2030-01-02T00:00")) == [str(late.id)]
        assert listed_ids(await _list(client, "?created_before=2030-01-02T00:00")) == [str(early.id)]
        # a plain date is midnight UTC; "from" includes the instant itself
        page = await _list(client, "?created_after=2030-01-03")
        assert listed_ids(page) == [str(late.id)]
        # the datetime-local input cannot show a plain date: it shows its midnight
        assert 'name="created_after" value="2030-01-03T00:00"' in page
        page = await _list(client, "?created_before=2030-01-03T02:00:30%2B02:00")
        assert 'name="created_before" value="2030-01-03T00:00:30"' in page  # in UTC, as labelled
        page = await _list(client, "?created_after=2030-01-01T00:00&created_before=2030-01-03T00:01")
        assert listed_ids(page) == [str(late.id), str(early.id)]
        assert 'value="2030-01-01T00:00"' in page


async def test_more_than_a_page_is_followed_with_the_cursor(app_engine: Any, clock: ManualClock) -> None:
    app, engine = app_engine
    started = []
    for _ in range(PAGE_SIZE + 3):
        started.append(str((await engine.start_workflow("leave", {}, tenant_id="acme")).id))
        clock.advance(1)
    await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")  # filtered out below
    newest_first = started[::-1]
    async with signed_in(app, "admin") as client:
        first = await _list(client, "?workflow=leave&status=completed")
        assert listed_ids(first) == newest_first[:PAGE_SIZE]
        link = next_link(first)
        assert link is not None
        assert link.startswith(f"{UI}/instances?workflow=leave&status=completed&cursor=")  # filters kept
        second = await client.get(link)
        assert second.status_code == 200
        assert listed_ids(second.text) == newest_first[PAGE_SIZE:]
        assert next_link(second.text) is None


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("?status=sleeping", "unknown status &#39;sleeping&#39;"),
        ("?created_after=yesterday", "started from: &#39;yesterday&#39; is not a date and time"),
        ("?created_before=2030-13-01", "started before: &#39;2030-13-01&#39; is not a date and time"),
        ("?cursor=not-a-cursor", "cursor"),
    ],
)
async def test_a_bad_filter_is_a_400_with_the_reason(app_engine: Any, query: str, said: str) -> None:
    app, engine = app_engine
    await engine.start_workflow("leave", {}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        response = await client.get(f"{UI}/instances{query}")
        assert response.status_code == 400
        assert 'role="alert"' in response.text
        assert said in response.text
        assert listed_ids(response.text) == []


async def test_the_list_needs_a_sign_in(app_engine: Any) -> None:
    app, _ = app_engine
    async with AsyncTestClient(app) as client:
        response = await client.get(f"{UI}/instances", follow_redirects=False)
        assert response.status_code in (302, 303, 307)
        assert response.headers["location"] == f"{UI}/login"
