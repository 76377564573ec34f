"""Bulk actions in Chromium: an admin ticks two of three waiting instances, cancels them, the
progress page reaches "completed", and the list shows them canceled; "select all"; the
progress page following a running operation without a reload; ticked tasks surviving the
inbox's live refresh."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from flowstar.model.access import User
from flowstar.model.bulk import BulkFilter, BulkRequest
from flowstar.model.enums import WorkflowStatus
from tests.browser.conftest import LiveApp
from tests.browser.test_inbox import _sign_in


async def test_an_admin_cancels_two_selected_instances(live_app: LiveApp, browser: Browser, tmp_path: Path) -> None:
    engine = live_app.engine
    ids = [str((await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")).id) for _ in range(3)]
    chosen, kept = ids[:2], ids[2]
    page = await _sign_in(browser, live_app, "admin")
    await page.get_by_role("link", name="Instances").click()
    await expect(page.locator("#instances tbody tr")).to_have_count(3)
    for instance_id in chosen:
        await page.locator(f"#pick-{instance_id}").check()
    await page.get_by_label("Reason for cancelling").fill("duplicates")
    await page.screenshot(path=str(tmp_path / "selected.png"))
    await page.get_by_role("button", name="Cancel selected").click()

    await expect(page.get_by_role("heading", name="Bulk cancel of instances")).to_be_visible()
    await expect(page.locator("#bulk-status")).to_have_text("completed")
    await expect(page.locator("#bulk-acted")).to_have_text("2")
    await expect(page.locator("#bulk-failed")).to_have_text("0")
    await page.screenshot(path=str(tmp_path / "progress.png"))

    await page.get_by_role("link", name="Back to the instances").click()
    for instance_id in chosen:
        await expect(page.locator(f"tr:has(#pick-{instance_id}) td.status")).to_have_text("canceled")
    await expect(page.locator(f"tr:has(#pick-{kept}) td.status")).to_have_text("waiting")
    await page.screenshot(path=str(tmp_path / "list.png"))
    statuses = [(await engine.get_instance(i)).status for i in ids]
    assert statuses == [WorkflowStatus.CANCELED, WorkflowStatus.CANCELED, WorkflowStatus.WAITING]


async def test_select_all_ticks_every_row_of_the_page(live_app: LiveApp, browser: Browser) -> None:
    await live_app.engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    await live_app.engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    page = await _sign_in(browser, live_app, "admin")
    await page.get_by_role("link", name="Instances").click()
    rows = page.locator('#instances input[name="ids"]')
    await expect(rows).to_have_count(2)
    await page.get_by_label("Select all on this page").check()
    await expect(rows.nth(0)).to_be_checked()
    await expect(rows.nth(1)).to_be_checked()
    await rows.nth(0).uncheck()  # one row less: no longer "all"
    await expect(page.get_by_label("Select all on this page")).not_to_be_checked()


async def test_the_progress_page_follows_a_running_operation(live_app: LiveApp, browser: Browser) -> None:
    engine = live_app.engine
    ids = [str((await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")).id) for _ in range(2)]
    admin = User(id="admin", tenant_id="acme", is_admin=True)
    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=tuple(ids)), reason="later")
    operation = await engine.bulk.submit(request, user=admin, run=False)  # stored, not started yet
    page = await _sign_in(browser, live_app, "admin")
    await page.goto(f"{live_app.url}/workflows/ui/bulk/{operation.id}")
    await expect(page.locator("#bulk-status")).to_have_text("pending")
    await engine.bulk.run(operation.id)
    # htmx polls every second: the page shows the outcome without a reload, then stops polling
    await expect(page.locator("#bulk-status")).to_have_text("completed")
    await expect(page.locator("#bulk-acted")).to_have_text("2")
    await expect(page.locator("#bulk-progress")).not_to_have_attribute("hx-trigger", "every 1s")


async def test_the_live_task_list_keeps_the_ticked_boxes(live_app: LiveApp, browser: Browser) -> None:
    engine = live_app.engine
    await engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    (first,) = (await engine.find_tasks()).items
    page = await _sign_in(browser, live_app, "admin")
    await page.locator(f"#pick-{first.id}").check()
    await page.wait_for_function("window.sseOpen === true")
    await engine.start_workflow("expense", {"who": "carol"}, tenant_id="acme")
    # the new task arrives over SSE and the table is swapped; the ticked box stays ticked
    await expect(page.locator('#task-list input[name="ids"]')).to_have_count(2)
    await expect(page.locator(f"#pick-{first.id}")).to_be_checked()
    second = next(t for t in (await engine.find_tasks()).items if t.id != first.id)
    await expect(page.locator(f"#pick-{second.id}")).not_to_be_checked()
