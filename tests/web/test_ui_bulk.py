"""Bulk actions in the inbox: select instances or tasks and act on them in one operation,
every matching instance after a dry-run confirmation, the progress page, admins only, the
tenant rule, and bad requests shown again with a 4xx."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import Fn, Set, linear
from tests.web.ui.test_instance_pages_list import signed_in
from tests.web.ui.test_pages import _csrf

from flowstar import BaseHumanStep, LocalExecutionEngine, ManualClock, WorkflowContext, WorkflowRegistry
from flowstar.model.access import User
from flowstar.model.bulk import BulkFilter, BulkRequest
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

UI = "/workflows/ui"
Client = AsyncTestClient[Litestar]
ADMIN = User(id="admin", tenant_id="acme", is_admin=True)


class Gate:
    """A payment step that fails while the gate is shut (failed instances a retry completes)."""

    def __init__(self) -> None:
        self.open = False

    def pay(self, context: WorkflowContext) -> None:
        if not self.open:
            raise RuntimeError("the card was declined")
        context.set("charged", True)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def app_engine(clock: ManualClock, gate: Gate) -> AsyncIterator[tuple[Litestar, LocalExecutionEngine]]:
    """expense waits for its assignee; charge fails until the gate opens. Users: the demo's
    and globex's own admin."""
    registry = WorkflowRegistry()
    registry.register_definition(
        linear("expense", BaseHumanStep("approve", title="Approve", assignee_key="who"), Set("done"))
    )
    registry.register_definition(linear("charge", Set("prepare", ready=True), Fn("pay", gate.pay)))
    engine = LocalExecutionEngine(registry, clock=clock)
    directory = UserDirectory.demo()
    directory.add(User(id="gadmin", tenant_id="globex", is_admin=True, display_name="Globex admin"), "gadmin")
    plugin = WorkflowWebPlugin(engine=engine, user_directory=directory, secret_key="k" * 32)
    yield Litestar(plugins=[plugin]), engine
    await engine.close()


async def _waiting(engine: LocalExecutionEngine, count: int, tenant: str = "acme") -> list[str]:
    return [str((await engine.start_workflow("expense", {"who": "bob"}, tenant_id=tenant)).id) for _ in range(count)]


async def _statuses(engine: LocalExecutionEngine, ids: list[str]) -> list[WorkflowStatus]:
    return [(await engine.get_instance(i)).status for i in ids]


async def _page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(f"{UI}{path}")
    assert response.status_code == status, response.text
    return response.text


async def _post(client: Client, path: str, fields: dict[str, Any], token_from: str = "/instances") -> Any:
    """Post a form with the session's CSRF token taken from a page, without following the 303."""
    token = _csrf(await _page(client, token_from))
    return await client.post(f"{UI}{path}", data={**fields, "_csrf_token": token}, follow_redirects=False)


async def _finished(client: Client, engine: LocalExecutionEngine, response: Any) -> str:
    """The operation a 303 leads to, once it has run; its id.

    The app (and the operation it started) runs in the test client's own event loop, so
    the wait for the operation runs there too.
    """
    assert response.status_code == 303, response.text
    match = re.fullmatch(rf"{UI}/bulk/([0-9a-f-]{{36}})", response.headers["location"])
    assert match, response.headers["location"]
    operation = await asyncio.to_thread(client.blocking_portal.call, engine.bulk.wait, match.group(1))
    assert operation.finished
    return match.group(1)


def _progress(page: str) -> dict[str, str]:
    """The progress page's counts by their ids (status, total, acted, skipped, failed)."""
    return dict(re.findall(r'<dd id="bulk-(status|total|acted|skipped|failed)">([^<]*)</dd>', page))


def _ticked(page: str) -> set[str]:
    return set(re.findall(r'name="ids" value="([^"]+)" id="pick-[^"]+" hx-preserve="true" checked', page))


# -- the instance list ----------------------------------------------------------------------


async def test_an_admin_gets_a_box_per_row_and_the_actions(app_engine: Any) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 2)
    async with signed_in(app, "admin") as client:
        page = await _page(client, "/instances")
        for instance_id in ids:
            assert f'<input type="checkbox" name="ids" value="{instance_id}" id="pick-{instance_id}"' in page
            assert f'<input type="hidden" name="page_ids" value="{instance_id}">' in page
        assert '<form method="post" action="/workflows/ui/bulk/instances" id="bulk-form">' in page
        assert '<label for="pick-all">Select all on this page</label>' in page
        assert '<button type="submit" name="action" value="retry">Retry selected</button>' in page
        assert '<button type="submit" name="action" value="cancel">Cancel selected</button>' in page
        assert '<label for="bulk-from-step">' in page
        assert '<label for="bulk-reason">' in page
        assert 'action="/workflows/ui/bulk/instances/matching" id="matching-form"' in page
        assert "static/bulk.js" in page


async def test_cancel_selected_instances(app_engine: Any) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 3)
    async with signed_in(app, "admin") as client:
        response = await _post(client, "/bulk/instances", {"ids": ids[:2], "action": "cancel", "reason": " expired "})
        operation_id = await _finished(client, engine, response)
        page = await _page(client, f"/bulk/{operation_id}")
        assert _progress(page) == {"status": "completed", "total": "2", "acted": "2", "skipped": "0", "failed": "0"}
        assert "<dt>Reason</dt><dd>expired</dd>" in page
        assert 'hx-trigger="every 1s"' not in page  # finished: no more polling
    assert await _statuses(engine, ids) == [WorkflowStatus.CANCELED, WorkflowStatus.CANCELED, WorkflowStatus.WAITING]
    assert (await engine.get_instance(ids[0])).error == "expired"
    operation = await engine.bulk.get(operation_id)
    assert (operation.request.filter.ids, operation.created_by) == (tuple(ids[:2]), "admin")


async def test_retry_selected_instances_from_a_step(app_engine: Any, gate: Gate) -> None:
    app, engine = app_engine
    failed = [str((await engine.start_workflow("charge", {}, tenant_id="acme")).id) for _ in range(2)]
    waiting = await _waiting(engine, 1)
    assert await _statuses(engine, failed) == [WorkflowStatus.FAILED] * 2
    prepare = engine.registry.get_definition("charge").steps["prepare"]
    assert isinstance(prepare, Set)
    prepared = prepare.runs
    gate.open = True
    async with signed_in(app, "admin") as client:
        response = await _post(
            client, "/bulk/instances", {"ids": [*failed, *waiting], "action": "retry", "from_step": "prepare"}
        )
        operation_id = await _finished(client, engine, response)
        page = await _page(client, f"/bulk/{operation_id}")
    # the waiting instance has not failed: it is skipped, not touched
    assert _progress(page) == {"status": "completed", "total": "3", "acted": "2", "skipped": "1", "failed": "0"}
    assert "<dt>From step</dt><dd>prepare</dd>" in page
    assert await _statuses(engine, failed) == [WorkflowStatus.COMPLETED] * 2
    assert await _statuses(engine, waiting) == [WorkflowStatus.WAITING]
    assert prepare.runs == prepared + 2  # each ran again from the step chosen


async def test_select_all_on_this_page_works_without_scripts(app_engine: Any) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 3)
    async with signed_in(app, "admin") as client:
        page = await _page(client, "/instances")
        on_page = re.findall(r'name="page_ids" value="([^"]+)"', page)
        assert sorted(on_page) == sorted(ids)
        # the box alone, no row ticked: the page's ids are taken
        fields = {"all_on_page": "true", "page_ids": on_page, "action": "cancel", "reason": "all of them"}
        operation_id = await _finished(client, engine, await _post(client, "/bulk/instances", fields))
        assert _progress(await _page(client, f"/bulk/{operation_id}"))["acted"] == "3"
    assert await _statuses(engine, ids) == [WorkflowStatus.CANCELED] * 3


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"action": "cancel", "reason": "nothing ticked"}, "select at least one instance"),
        ({"action": "cancel", "reason": "   ", "tick": True}, "a cancellation needs a reason"),
        ({"action": "cancel", "reason": "x" * 1001, "tick": True}, "the reason is longer than 1000 characters"),
        ({"action": "explode", "tick": True}, "choose to retry or to cancel"),
        ({"action": "cancel", "reason": "bad id", "ids": "not-an-id"}, "filter.ids: &#39;not-an-id&#39; is not an id"),
    ],
)
async def test_a_bad_selection_shows_the_list_again_with_the_reason(
    app_engine: Any, fields: dict[str, Any], said: str
) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 2)
    tick = bool(fields.pop("tick", False))
    posted = {**fields, "workflow": "expense", **({"ids": ids[:1]} if tick else {})}
    async with signed_in(app, "admin") as client:
        response = await _post(client, "/bulk/instances", posted)
        assert response.status_code == 422, response.text
        assert f'<div class="form-errors" role="alert" id="bulk-notice"><p>{said}' in response.text
        assert 'id="instances"' in response.text  # the list, as it was filtered
        assert '<option value="expense" selected>' in response.text
        assert _ticked(response.text) == ({ids[0]} if tick else set())  # the selection is kept
    assert await _statuses(engine, ids) == [WorkflowStatus.WAITING] * 2
    assert await engine.store.unfinished_bulk() == []


# -- every matching instance, after the dry run ---------------------------------------------


async def test_acting_on_every_match_shows_the_dry_run_count_first(app_engine: Any) -> None:
    app, engine = app_engine
    ours = await _waiting(engine, 3)
    theirs = await _waiting(engine, 1, tenant="globex")
    other = str((await engine.start_workflow("charge", {}, tenant_id="acme")).id)  # failed: not a match
    async with signed_in(app, "admin") as client:
        listing = await _page(client, "/instances?workflow=expense")
        form = listing.split('id="matching-form"', 1)[1].split("</form>", 1)[0]
        assert '<input type="hidden" name="workflow" value="expense">' in form  # the list's filters go along
        page = await _page(client, "/bulk/instances/matching?action=cancel&workflow=expense")
        assert '<p id="bulk-count"><strong>3</strong> instances match now.</p>' in page  # not globex's
        assert '<dd id="bulk-statuses">running, waiting, pending</dd>' in page
        assert '<button type="submit">Cancel 3 instances</button>' in page
        assert await _statuses(engine, ours) == [WorkflowStatus.WAITING] * 3  # a dry run changes nothing

        refused = await _post(client, "/bulk/instances/matching", {"action": "cancel", "workflow": "expense"})
        assert refused.status_code == 422
        assert "a cancellation needs a reason" in refused.text
        assert "<strong>3</strong> instances match now." in refused.text  # counted again

        fields = {"action": "cancel", "workflow": "expense", "reason": "end of quarter"}
        operation_id = await _finished(client, engine, await _post(client, "/bulk/instances/matching", fields))
        page = await _page(client, f"/bulk/{operation_id}")
        assert _progress(page)["acted"] == "3"
        assert '<dd id="bulk-filter">expense; status running, waiting, pending</dd>' in page
    assert await _statuses(engine, ours) == [WorkflowStatus.CANCELED] * 3
    assert await _statuses(engine, [*theirs, other]) == [WorkflowStatus.WAITING, WorkflowStatus.FAILED]


async def test_retrying_every_failed_match(app_engine: Any, gate: Gate) -> None:
    app, engine = app_engine
    failed = [str((await engine.start_workflow("charge", {}, tenant_id="acme")).id) for _ in range(2)]
    await _waiting(engine, 1)
    gate.open = True
    async with signed_in(app, "admin") as client:
        page = await _page(client, "/bulk/instances/matching?action=retry&status=failed")
        assert "<strong>2</strong> instances match now." in page
        assert '<button type="submit">Retry 2 instances</button>' in page
        fields = {"action": "retry", "status": "failed"}
        operation_id = await _finished(client, engine, await _post(client, "/bulk/instances/matching", fields))
        assert _progress(await _page(client, f"/bulk/{operation_id}"))["acted"] == "2"
    assert await _statuses(engine, failed) == [WorkflowStatus.COMPLETED] * 2


async def test_nothing_to_match_offers_no_button(app_engine: Any) -> None:
    app, _engine = app_engine
    async with signed_in(app, "admin") as client:
        page = await _page(client, "/bulk/instances/matching?action=retry")
        assert "<strong>0</strong> instances match now." in page
        assert 'id="matching-confirm"' not in page


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("?action=explode", "choose to retry or to cancel"),
        ("?action=cancel&status=sleeping", "unknown status &#39;sleeping&#39;"),
        ("?action=cancel&created_after=yesterday", "is not a date and time"),
    ],
)
async def test_a_bad_confirmation_request_is_a_422_with_the_reason(app_engine: Any, query: str, said: str) -> None:
    app, _engine = app_engine
    async with signed_in(app, "admin") as client:
        page = await _page(client, f"/bulk/instances/matching{query}", status=422)
        assert 'role="alert" id="bulk-notice"' in page
        assert said in page
        assert 'id="matching-confirm"' not in page


# -- tasks ---------------------------------------------------------------------------------


async def _tasks(engine: LocalExecutionEngine, instance_ids: list[str]) -> list[Any]:
    return [(await engine.get_tasks(instance_id=i))[0] for i in instance_ids]


async def test_reassign_selected_tasks(app_engine: Any) -> None:
    app, engine = app_engine
    instances = await _waiting(engine, 3)
    tasks = await _tasks(engine, instances)
    async with signed_in(app, "admin") as client:
        inbox = await _page(client, "/")
        for task in tasks:  # an admin's open tab is every open task of the tenant
            assert f'name="ids" value="{task.id}" id="pick-{task.id}" hx-preserve="true"' in inbox
        assert '<form method="post" action="/workflows/ui/bulk/tasks" id="bulk-form">' in inbox
        assert '<button type="submit">Reassign selected</button>' in inbox
        assert '<option value="carol">' in inbox  # the tenant's users are suggested
        assert '<option value="dave">' not in inbox
        fragment = await _page(client, "/fragments/tasks?tab=open")  # the live refresh keeps the boxes
        assert f'id="pick-{tasks[0].id}" hx-preserve="true"' in fragment

        fields = {"ids": [tasks[0].id, tasks[1].id], "assignee": "carol", "group": "finance", "reason": "holiday"}
        operation_id = await _finished(client, engine, await _post(client, "/bulk/tasks", fields, token_from="/"))
        page = await _page(client, f"/bulk/{operation_id}")
        assert _progress(page) == {"status": "completed", "total": "2", "acted": "2", "skipped": "0", "failed": "0"}
        assert "<h1>Bulk reassign of tasks</h1>" in page
        assert "<dt>To user</dt><dd>carol</dd>" in page
        assert "<dt>To group</dt><dd>finance</dd>" in page
        assert f'<a href="{UI}/" id="bulk-back">Back to the inbox</a>' in page
    moved = [await engine.get_task(t.id) for t in tasks]
    assert [(t.assignee_id, t.assignee_group) for t in moved] == [
        ("carol", "finance"),
        ("carol", "finance"),
        ("bob", None),
    ]
    trail = await engine.task_audit(tasks[0].id)
    assert (trail[-1].action, trail[-1].actor, trail[-1].details.get("reason")) == ("reassigned", "admin", "holiday")


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"assignee": "carol", "reason": "nothing ticked"}, "select at least one task"),
        ({"reason": "nowhere"}, "name the user or the group to give the tasks to"),
        ({"group": "finance"}, "a reassignment needs a reason"),
        ({"assignee": "zed", "reason": "unknown"}, "there is no user &#39;zed&#39; to give the task to"),
        ({"assignee": "dave", "reason": "another tenant"}, "there is no user &#39;dave&#39;"),
        ({"assignee": "carol", "reason": "bad id", "ids": "nope"}, "filter.ids: &#39;nope&#39; is not an id"),
    ],
)
async def test_a_bad_reassignment_shows_the_inbox_again(app_engine: Any, fields: dict[str, Any], said: str) -> None:
    app, engine = app_engine
    (task,) = await _tasks(engine, await _waiting(engine, 1))
    ticked = "ids" in fields or fields.get("reason") == "nothing ticked"
    posted = {**({} if ticked else {"ids": [task.id]}), **fields, "tab": "open"}
    async with signed_in(app, "admin") as client:
        response = await _post(client, "/bulk/tasks", posted, token_from="/")
        assert response.status_code == 422, response.text
        assert f'role="alert" id="bulk-notice"><p>{said}' in response.text
        assert "<h1>Inbox</h1>" in response.text
        if not ticked:
            assert _ticked(response.text) == {task.id}
            assert f'value="{fields.get("assignee", "")}"' in response.text  # the fields are kept
    assert (await engine.get_task(task.id)).assignee_id == "bob"


# -- the progress page -----------------------------------------------------------------------


async def test_the_progress_page_polls_until_the_operation_finishes(app_engine: Any) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 2)
    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=tuple(ids)), reason="later")
    operation = await engine.bulk.submit(request, user=ADMIN, run=False)  # stored, not run yet
    poll = f'hx-get="{UI}/fragments/bulk/{operation.id}" hx-trigger="every 1s" hx-swap="outerHTML"'
    async with signed_in(app, "admin") as client:
        page = await _page(client, f"/bulk/{operation.id}")
        assert _progress(page) == {"status": "pending", "total": "2", "acted": "0", "skipped": "0", "failed": "0"}
        assert poll in page
        assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page  # without scripts
        assert f'<a href="{UI}/bulk/{operation.id}">Refresh</a>' in page
        fragment = await _page(client, f"/fragments/bulk/{operation.id}")
        assert poll in fragment
        assert "<html" not in fragment

        await engine.bulk.run(operation.id)
        fragment = await _page(client, f"/fragments/bulk/{operation.id}")
        assert _progress(fragment)["status"] == "completed"
        assert "hx-trigger" not in fragment  # the swapped-in section polls no more
        page = await _page(client, f"/bulk/{operation.id}")
        assert _progress(page)["acted"] == "2"
        assert "http-equiv" not in page
        assert "Refresh</a>" not in page


async def test_another_tenants_ids_fail_and_their_operation_is_404(app_engine: Any) -> None:
    app, engine = app_engine
    ours = await _waiting(engine, 1)
    theirs = await _waiting(engine, 1, tenant="globex")
    async with signed_in(app, "gadmin") as client:
        fields = {"ids": theirs, "action": "cancel", "reason": "globex"}
        foreign_id = await _finished(client, engine, await _post(client, "/bulk/instances", fields))
        assert _progress(await _page(client, f"/bulk/{foreign_id}"))["acted"] == "1"
    async with signed_in(app, "admin") as client:
        for path in (f"/bulk/{foreign_id}", f"/fragments/bulk/{foreign_id}", "/bulk/not-an-id", "/bulk/" + "0" * 32):
            assert "No such bulk operation." in await _page(client, path, status=404)
        # a forged selection naming another tenant's instance: it fails, with the reason shown
        fields = {"ids": [*ours, *theirs], "action": "cancel", "reason": "mixed"}
        operation_id = await _finished(client, engine, await _post(client, "/bulk/instances", fields))
        page = await _page(client, f"/bulk/{operation_id}")
    assert _progress(page) == {"status": "completed", "total": "2", "acted": "1", "skipped": "0", "failed": "1"}
    assert f'<ul id="bulk-errors" class="field-error"><li>{theirs[0]}: no such instance</li></ul>' in page
    assert await _statuses(engine, ours) == [WorkflowStatus.CANCELED]


# -- admins only -----------------------------------------------------------------------------


async def test_anyone_else_sees_no_boxes_and_gets_403_from_every_route(app_engine: Any) -> None:
    app, engine = app_engine
    ids = [str((await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme", created_by="bob")).id)]
    (task,) = await _tasks(engine, ids)
    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=tuple(ids)), reason="x")
    operation = await engine.bulk.submit(request, user=ADMIN, run=False)
    async with signed_in(app, "bob") as client:
        listing = await _page(client, "/instances")
        assert ids[0] in listing  # bob started it: it is listed, without a box
        inbox = await _page(client, "/")
        assert "Approve" in inbox
        for page in (listing, inbox):
            assert 'name="ids"' not in page
            assert 'id="bulk-form"' not in page
            assert 'id="matching-form"' not in page
        posts = [
            ("/bulk/instances", {"ids": ids, "action": "cancel", "reason": "mine"}),
            ("/bulk/instances/matching", {"action": "cancel", "reason": "all"}),
            ("/bulk/tasks", {"ids": [task.id], "assignee": "bob", "reason": "mine"}),
        ]
        for path, fields in posts:
            refused = await _post(client, path, fields)
            assert refused.status_code == 403, path
            assert "Bulk actions are for admins." in refused.text
        for path in (
            "/bulk/instances/matching?action=cancel",
            f"/bulk/{operation.id}",
            f"/fragments/bulk/{operation.id}",
        ):
            assert "Bulk actions are for admins." in await _page(client, path, status=403)
    assert await _statuses(engine, ids) == [WorkflowStatus.WAITING]
    assert (await engine.get_task(task.id)).status is TaskStatus.PENDING
    assert (await engine.bulk.get(operation.id)).status == "pending"


async def test_the_routes_need_a_sign_in_and_the_csrf_token(app_engine: Any) -> None:
    app, engine = app_engine
    ids = await _waiting(engine, 1)
    async with AsyncTestClient(app) as client:
        for path in ("/bulk/instances/matching?action=cancel", "/bulk/" + "0" * 32):
            response = await client.get(f"{UI}{path}", follow_redirects=False)
            assert (response.status_code, response.headers["location"]) == (302, f"{UI}/login")
        assert (await client.get(f"{UI}/fragments/bulk/{'0' * 32}")).status_code == 401
    async with signed_in(app, "admin") as client:
        forged = await client.post(f"{UI}/bulk/instances", data={"ids": ids, "action": "cancel", "reason": "no token"})
        assert forged.status_code == 403
    assert await _statuses(engine, ids) == [WorkflowStatus.WAITING]


async def test_the_back_office_acts_as_anonymous(clock: ManualClock) -> None:
    """With no user provider (a trusted back office, no sessions, hence no CSRF) the boxes are
    there for everybody."""
    registry = WorkflowRegistry()
    registry.register_definition(linear("expense", BaseHumanStep("approve", title="Approve", assignee_key="who")))
    engine = LocalExecutionEngine(registry, clock=clock)
    app = Litestar(plugins=[WorkflowWebPlugin(engine=engine, secret_key="o" * 32)])
    ids = await _waiting(engine, 2)
    async with AsyncTestClient(app) as client:
        assert f'id="pick-{ids[0]}"' in await _page(client, "/instances")
        fields = {"ids": ids, "action": "cancel", "reason": "back office"}
        posted = await client.post(f"{UI}/bulk/instances", data=fields, follow_redirects=False)
        operation_id = await _finished(client, engine, posted)
        assert "<dt>Started by</dt><dd>anonymous</dd>" in await _page(client, f"/bulk/{operation_id}")
    assert await _statuses(engine, ids) == [WorkflowStatus.CANCELED] * 2
    await engine.close()
