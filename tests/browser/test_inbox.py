"""The inbox in Chromium: sign in, start a workflow (its diagram drawn), a form's field error,
completion, another user's 403, and a new task appearing in an open inbox without a reload."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from flowstar.model.enums import WorkflowStatus
from tests.browser.conftest import LiveApp


async def _sign_in(browser: Browser, app: LiveApp, user: str) -> Page:
    page = await browser.new_page()
    # htmx-ext-sse fires htmx:sseOpen once the live list's feed is connected.
    await page.add_init_script(
        "window.sseOpen = false; document.addEventListener('htmx:sseOpen', () => { window.sseOpen = true; });"
    )
    await page.goto(f"{app.url}/workflows/ui/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(user)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    return page


async def test_complete_a_task_after_a_field_error(live_app: LiveApp, browser: Browser, tmp_path: Path) -> None:
    page = await _sign_in(browser, live_app, "bob")
    await page.get_by_role("link", name="Start a workflow").click()
    await page.get_by_role("link", name="expense").click()
    await page.get_by_label("Initial data (JSON object)").fill('{"who": "bob"}')
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("#instance-status")).to_have_text("waiting")
    # Mermaid (served by the app) draws the diagram, the waiting step highlighted.
    await expect(page.locator("pre.mermaid svg .node.current")).to_have_count(1)
    await page.screenshot(path=str(tmp_path / "instance.png"))
    (instance,) = (await live_app.engine.find_instances()).items
    await page.get_by_role("link", name="Inbox").click()
    await page.get_by_role("link", name="Approve expense").click()
    await page.get_by_label("approve").check()
    await page.get_by_label("Amount").fill("-5")
    await page.get_by_role("button", name="Complete").click()
    error = page.locator("#f-amount-error")
    await expect(error).to_be_visible()
    await expect(page.get_by_label("Amount")).to_have_value("-5")
    await page.screenshot(path=str(tmp_path / "field-error.png"))
    assert (await live_app.engine.get_instance(instance.id)).status == WorkflowStatus.WAITING

    await page.get_by_label("Amount").fill("120")
    await page.get_by_role("button", name="Complete").click()
    await expect(page.get_by_text("No tasks.")).to_be_visible()
    await page.goto(f"{live_app.url}/workflows/ui/instances/{instance.id}")
    await expect(page.locator("#instance-status")).to_have_text("completed")
    await page.screenshot(path=str(tmp_path / "done.png"))
    done = await live_app.engine.get_instance(instance.id)
    assert done.status == WorkflowStatus.COMPLETED
    assert done.context.data["decision"] == "approve"


async def test_another_user_neither_sees_nor_opens_the_task(live_app: LiveApp, browser: Browser) -> None:
    await live_app.engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    (task,) = (await live_app.engine.find_tasks()).items
    page = await _sign_in(browser, live_app, "alice")
    await expect(page.get_by_text("No tasks.")).to_be_visible()
    response = await page.goto(f"{live_app.url}/workflows/ui/tasks/{task.id}")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_role("heading", name="This task is not yours.")).to_be_visible()


async def test_a_new_task_appears_without_a_reload(live_app: LiveApp, browser: Browser, tmp_path: Path) -> None:
    page = await _sign_in(browser, live_app, "bob")
    await expect(page.get_by_text("No tasks.")).to_be_visible()
    await page.wait_for_function("window.sseOpen === true")
    await live_app.engine.start_workflow("expense", {"who": "bob"}, tenant_id="acme")
    await expect(page.get_by_role("link", name="Approve expense")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "live.png"))
