"""An instance page's admin actions through the plugin: cancel with a reason, retry a failed
instance from a step, refusals as 4xx messages, no buttons and a 403 for anyone else, CSRF."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.unit.helpers import RecordingBus
from tests.web.ui.test_instance_pages_list import UI, Flaky, app_engine, build_engine, signed_in
from tests.web.ui.test_pages import _csrf

from flowstar import ManualClock
from flowstar.events import WorkflowCanceled
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.web import UserDirectory, WorkflowWebPlugin

__all__ = ["app_engine"]  # the fixtures this module uses


async def _page(client: AsyncTestClient[Litestar], instance_id: Any) -> str:
    response = await client.get(f"{UI}/instances/{instance_id}")
    assert response.status_code == 200, response.text
    return response.text


async def _post(client: AsyncTestClient[Litestar], instance_id: Any, action: str, **fields: str) -> Any:
    """Post one of the instance page's forms with a CSRF token of the session (no redirects followed)."""
    token = _csrf((await client.get(f"{UI}/instances")).text)
    return await client.post(
        f"{UI}/instances/{instance_id}/{action}", data={**fields, "_csrf_token": token}, follow_redirects=False
    )


async def test_an_admin_cancels_an_instance_with_a_reason(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme", created_by="bob")
    async with signed_in(app, "admin") as client:
        page = await _page(client, instance.id)
        assert f'action="{UI}/instances/{instance.id}/cancel"' in page
        assert '<label for="cancel-reason">' in page
        assert "retry-form" not in page  # only a failed instance can be retried
        token = _csrf(page)
        response = await client.post(
            f"{UI}/instances/{instance.id}/cancel",
            data={"reason": "  duplicate request  ", "_csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"{UI}/instances/{instance.id}"
        after = await _page(client, instance.id)
        assert '<dd id="instance-status">canceled</dd>' in after
        assert "<dt>Reason</dt>" in after
        assert "cancel-form" not in after  # nothing left to cancel
    canceled = await engine.get_instance(instance.id)
    assert canceled.status == WorkflowStatus.CANCELED
    assert canceled.error == "duplicate request"
    (task,) = await engine.get_tasks(instance_id=instance.id, status=None)
    assert task.status == TaskStatus.CANCELED


async def test_a_cancel_without_a_reason_is_a_422_and_changes_nothing(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        response = await _post(client, instance.id, "cancel", reason="   ")
        assert response.status_code == 422
        assert '<div class="form-errors" role="alert" id="instance-notice"><p>a cancellation needs a reason' in (
            response.text
        )
        assert '<dd id="instance-status">waiting</dd>' in response.text
    assert (await engine.get_instance(instance.id)).status == WorkflowStatus.WAITING


async def test_cancelling_a_completed_instance_is_a_409_with_the_engines_message(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("leave", {}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        assert "cancel-form" not in await _page(client, instance.id)
        # a stale page's post
        response = await _post(client, instance.id, "cancel", reason="too late")
        assert response.status_code == 409
        assert "is completed and cannot be canceled" in response.text
        assert 'role="alert"' in response.text
    assert (await engine.get_instance(instance.id)).status == WorkflowStatus.COMPLETED


async def test_a_non_admin_sees_no_actions_and_a_forged_post_is_403(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "alice"}, tenant_id="acme", created_by="bob")
    failed = await engine.start_workflow("charge", {}, tenant_id="acme", created_by="bob")
    async with signed_in(app, "bob") as client:
        for shown in (instance, failed):
            page = await _page(client, shown.id)  # bob started them: he may look
            assert "cancel-form" not in page
            assert "retry-form" not in page
        cancel = await _post(client, instance.id, "cancel", reason="mine")
        assert cancel.status_code == 403
        assert "only an admin may cancel" in cancel.text
        retry = await _post(client, failed.id, "retry", from_step="pay")
        assert retry.status_code == 403
    async with signed_in(app, "carol") as client:  # may not even see it
        assert (await _post(client, instance.id, "cancel", reason="x")).status_code == 403
    async with signed_in(app, "dave") as client:  # another tenant's: it does not exist for him
        assert (await _post(client, instance.id, "cancel", reason="x")).status_code == 404
    assert (await engine.get_instance(instance.id)).status == WorkflowStatus.WAITING
    assert (await engine.get_instance(failed.id)).status == WorkflowStatus.FAILED


async def test_a_post_without_the_csrf_token_is_403(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        response = await client.post(f"{UI}/instances/{instance.id}/cancel", data={"reason": "no token"})
        assert response.status_code == 403
    assert (await engine.get_instance(instance.id)).status == WorkflowStatus.WAITING


async def test_retry_from_the_failed_step_runs_it_again(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("charge", {}, tenant_id="acme")
    pay = engine.registry.get_definition("charge").steps["pay"]
    assert isinstance(pay, Flaky)
    assert (instance.status, instance.failed_step, pay.runs) == (WorkflowStatus.FAILED, "pay", 1)
    async with signed_in(app, "admin") as client:
        page = await _page(client, instance.id)
        assert '<label for="retry-step">Retry from step</label>' in page
        assert '<option value="pay" selected>pay (failed)</option>' in page  # the failed step is the default
        assert '<option value="prepare">prepare</option>' in page
        response = await _post(client, instance.id, "retry", from_step="pay")
        assert response.status_code == 303
        assert response.headers["location"] == f"{UI}/instances/{instance.id}"
        assert '<dd id="instance-status">completed</dd>' in await _page(client, instance.id)
    done = await engine.get_instance(instance.id)
    assert done.status == WorkflowStatus.COMPLETED
    assert done.data["charged"] is True
    assert pay.runs == 2


async def test_retry_from_an_earlier_step_runs_from_there(app_engine: Any) -> None:
    app, engine = app_engine
    instance = await engine.start_workflow("charge", {}, tenant_id="acme")
    prepare = engine.registry.get_definition("charge").steps["prepare"]
    before = prepare.runs
    async with signed_in(app, "admin") as client:
        assert (await _post(client, instance.id, "retry", from_step="prepare")).status_code == 303
    assert (await engine.get_instance(instance.id)).status == WorkflowStatus.COMPLETED
    assert prepare.runs == before + 1
    assert [r.step_name for r in await engine.get_history(instance.id)].count("prepare") == 2


async def test_retry_refusals_are_4xx(app_engine: Any) -> None:
    app, engine = app_engine
    failed = await engine.start_workflow("charge", {}, tenant_id="acme")
    waiting = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    async with signed_in(app, "admin") as client:
        unknown = await _post(client, failed.id, "retry", from_step="<nowhere>")
        assert unknown.status_code == 422
        assert "has no step &#39;&lt;nowhere&gt;&#39;" in unknown.text
        not_failed = await _post(client, waiting.id, "retry", from_step="approve")
        assert not_failed.status_code == 409
        assert "only failed instances can be retried" in not_failed.text
        missing = await _post(client, "00000000-0000-0000-0000-000000000000", "cancel", reason="x")
        assert missing.status_code == 404
        assert (await _post(client, failed.id, "restart")).status_code == 404  # no such action
    assert (await engine.get_instance(failed.id)).status == WorkflowStatus.FAILED


def _canceled_by(bus: RecordingBus) -> list[str | None]:
    return [e.canceled_by for e in bus.events if isinstance(e, WorkflowCanceled)]


async def test_the_cancellation_is_recorded_with_who_canceled(clock: ManualClock) -> None:
    bus = RecordingBus()
    engine = build_engine(clock, bus)
    signed = Litestar(
        plugins=[WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="c" * 32)]
    )
    # With no user provider the UI is a trusted back office (no sign-in cookie, so no CSRF
    # token either): it may cancel, recorded as anonymous.
    back_office = Litestar(plugins=[WorkflowWebPlugin(engine=engine, secret_key="b" * 32)])
    try:
        first = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
        second = await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
        async with signed_in(signed, "admin") as client:
            assert (await _post(client, first.id, "cancel", reason="by an admin")).status_code == 303
        async with AsyncTestClient(back_office) as client:
            page = await _page(client, second.id)
            assert "cancel-form" in page
            response = await client.post(
                f"{UI}/instances/{second.id}/cancel",
                data={"reason": "cleanup"},
                follow_redirects=False,
            )
            assert response.status_code == 303
        assert _canceled_by(bus) == ["admin", "anonymous"]
        assert (await engine.get_instance(second.id)).status == WorkflowStatus.CANCELED
    finally:
        await engine.close()
