"""The inbox pages: sign-in, the task list (and its live fragment), a task with its form.

Handlers use the plugin's dependencies ``engine``, ``current_user`` and ``web_config``.
With no user provider configured the UI is a trusted back office (every task shown,
completions recorded as "anonymous"); with one, a visitor who is not signed in is sent to
the sign-in page and sees only the tasks the engine says are theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.enums import TaskStatus
from flowstar.model.errors import FormValidationError, ValidationError, WorkflowsError
from flowstar.model.state import HumanTask
from flowstar.web.auth import sign_in, sign_out
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, MinPriority, WebConfigDep
from flowstar.web.ui.forms import FormValues, form_context, read_post
from flowstar.web.ui.task_access import error_status, may_administer, visible_task
from flowstar.web.ui.task_actions import ACTIONS, ANONYMOUS, ActionCall, action_context, assignable_users

__all__ = ["ROUTES", "ListFilter", "inbox_page", "message", "page_context", "posted_fields", "sign_in_needed"]

# Each tab's status and claimable filter: my tasks are the open ones assigned to (or
# claimed by) me, my groups' tasks the open ones waiting for somebody of a group to take.
_TABS: dict[str, tuple[TaskStatus, bool | None]] = {
    "open": (TaskStatus.PENDING, False),
    "group": (TaskStatus.PENDING, True),
    "completed": (TaskStatus.COMPLETED, None),
}


def page_context(config: WebConfig, user: User | None, **context: Any) -> dict[str, Any]:
    """The context every page's base template needs, plus ``context``."""
    return {
        "ui": config.ui_path,
        "events": f"{config.path_prefix}/events",
        "user": user,
        "can_sign_in": config.user_directory is not None,
        **context,
    }


def sign_in_needed(config: WebConfig, user: User | None) -> Redirect | None:
    if user is None and config.user_provider is not None:
        return Redirect(path=f"{config.ui_path}/login")
    return None


def message(config: WebConfig, user: User | None, status: int, text: str) -> Template:
    context = page_context(config, user, heading=text)
    return Template(template_name="flowstar/message.html", context=context, status_code=status)


@get("/login", name="flowstar-ui:login")
async def login_page(request: Request[Any, Any, Any], web_config: WebConfigDep, current_user: CurrentUser) -> Template:
    """The sign-in form."""
    return Template(template_name="flowstar/login.html", context=page_context(web_config, current_user, username=""))


@post("/login", name="flowstar-ui:login-post", status_code=303)
async def login(request: Request[Any, Any, Any], web_config: WebConfigDep) -> Response[Any]:
    """Check the password against the user directory and start a session."""
    form = await request.form()
    username = str(form.get("username") or "")
    directory = web_config.user_directory
    user = directory.authenticate(username, str(form.get("password") or "")) if directory else None
    if user is None:
        context = page_context(web_config, None, username=username, error="Unknown user name or wrong password.")
        return Template(template_name="flowstar/login.html", context=context, status_code=401)
    response = Redirect(path=f"{web_config.ui_path}/", status_code=303)
    sign_in(request, response, user, secure=web_config.session_cookie_secure)
    return response


@post("/logout", name="flowstar-ui:logout", status_code=303)
async def logout(request: Request[Any, Any, Any], web_config: WebConfigDep) -> Redirect:
    """End the session."""
    response = Redirect(path=f"{web_config.ui_path}/login", status_code=303)
    sign_out(request, response)
    return response


@dataclass(frozen=True)
class ListFilter:
    """The inbox's filters, from the query string."""

    tab: str = "open"
    workflow: str | None = None
    overdue: bool = False
    min_priority: int | None = None

    def query(self) -> str:
        """The filters as a query string (for the live fragment and the next page)."""
        params: dict[str, str] = {"tab": self.tab}
        if self.workflow:
            params["workflow"] = self.workflow
        if self.overdue:
            params["overdue"] = "true"
        if self.min_priority is not None:
            params["min_priority"] = str(self.min_priority)
        return urlencode(params)


async def _list_context(
    engine: Engine, user: User | None, shown: ListFilter, cursor: str | None, config: WebConfig
) -> dict[str, Any]:
    tab = shown.tab if shown.tab in _TABS else "open"
    shown = ListFilter(
        tab=tab,
        workflow=shown.workflow or None,
        overdue=shown.overdue and tab != "completed",
        min_priority=shown.min_priority,
    )
    status, claimable = _TABS[tab]
    kwargs: dict[str, Any] = {
        "status": status,
        "claimable": claimable,
        "user": user,
        "cursor": cursor or None,
        "workflow_name": shown.workflow,
        "overdue": shown.overdue,
        "min_priority": shown.min_priority,
    }
    if tab == "completed" and user is not None:
        kwargs["completed_by"] = user.id
    page = await engine.find_tasks(**kwargs)
    tasks: list[HumanTask] = list(page.items)
    if tab != "completed":
        # Most urgent first within the page: priority (higher first), then due date.
        tasks.sort(key=lambda t: (-t.priority, t.due_at is None, t.due_at or t.created_at))
    else:
        tasks.sort(key=lambda t: t.completed_at or t.created_at, reverse=True)
    now = engine.clock.now()
    overdue = {t.id for t in tasks if t.due_at is not None and t.due_at < now and tab != "completed"}
    return {
        "tasks": tasks,
        "tab": tab,
        "filters": shown,
        "query": shown.query(),
        "workflows": sorted({d.name for d in engine.registry.list_definitions()}),
        "overdue": overdue,
        "next_cursor": page.next_cursor,
        # An admin may select open tasks and reassign them in one bulk operation.
        "can_bulk": may_administer(user) and tab != "completed",
        "assignable": assignable_users(config.user_directory, user),
        "selected": set(),
        "bulk_notice": "",
        "posted": {},
    }


async def inbox_page(
    engine: Engine,
    user: User | None,
    config: WebConfig,
    shown: ListFilter,
    cursor: str | None = None,
    *,
    status: int = 200,
    **shown_too: Any,
) -> Template:
    """The inbox page; ``shown_too`` overrides its context (a bulk form's refusal and input)."""
    context = await _list_context(engine, user, shown, cursor, config)
    context.update(shown_too)
    return Template(
        template_name="flowstar/inbox.html", context=page_context(config, user, **context), status_code=status
    )


@get("/", name="flowstar-ui:inbox")
async def inbox(
    request: Request[Any, Any, Any],
    *,
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    tab: FromQuery[str] = "open",
    workflow: FromQuery[str | None] = None,
    overdue: FromQuery[bool] = False,
    min_priority: MinPriority = None,
    cursor: FromQuery[str | None] = None,
) -> Template | Redirect:
    """The inbox: open tasks or recently completed ones, refreshed live over SSE."""
    redirect = sign_in_needed(web_config, current_user)
    if redirect:
        return redirect
    shown = ListFilter(tab, workflow, overdue, min_priority)
    return await inbox_page(engine, current_user, web_config, shown, cursor)


@get("/fragments/tasks", name="flowstar-ui:task-list")
async def task_list(
    request: Request[Any, Any, Any],
    *,
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    tab: FromQuery[str] = "open",
    workflow: FromQuery[str | None] = None,
    overdue: FromQuery[bool] = False,
    min_priority: MinPriority = None,
) -> Template | Response[Any]:
    """The task table alone, fetched by htmx when a task event arrives."""
    if sign_in_needed(web_config, current_user):
        return Response(content="", status_code=401)
    shown = ListFilter(tab, workflow, overdue, min_priority)
    context = await _list_context(engine, current_user, shown, None, web_config)
    return Template(template_name="flowstar/task_list.html", context=page_context(web_config, current_user, **context))


async def _task_page(
    engine: Engine,
    task: HumanTask,
    user: User | None,
    config: WebConfig,
    *,
    status: int = 200,
    values: FormValues | None = None,
    errors: dict[str, list[str]] | None = None,
    notice: str = "",
    posted: FormValues | None = None,
) -> Template:
    """The task page: details, its form, the actions that apply, comments and the audit trail.

    ``notice`` is an engine's refusal to show; ``posted`` the action fields to show again.
    """
    now = engine.clock.now()
    context = page_context(
        config,
        user,
        task=task,
        **form_context(task.form_schema, values, errors or {}, task.data),
        **await action_context(engine, task, user, config.user_directory),
        overdue=task.due_at is not None and task.due_at < now,
        notice=notice,
        posted=posted or {},
    )
    return Template(template_name="flowstar/task.html", context=context, status_code=status)


_DENIED = {404: "No such task.", 403: "This task is not yours."}


async def _task_or_answer(
    task_id: str, engine: Engine, user: User | None, config: WebConfig
) -> HumanTask | Template | Redirect:
    """The URL's task if the user may see it, else the page to answer with (sign-in, 403, 404)."""
    redirect = sign_in_needed(config, user)
    if redirect:
        return redirect
    found = await visible_task(engine, task_id, user)
    if isinstance(found, int):
        return message(config, user, found, _DENIED[found])
    return found


async def _refused(
    engine: Engine, task: HumanTask, user: User | None, config: WebConfig, exc: WorkflowsError, **shown: Any
) -> Template:
    """The engine's refusal on the task page as it is now (or alone, if the task is gone for the user)."""
    status = error_status(exc)
    current = await visible_task(engine, task.id, user)
    if isinstance(current, int):
        return message(config, user, status, str(exc))
    return await _task_page(engine, current, user, config, status=status, notice=str(exc), **shown)


@get("/tasks/{task_id:str}", name="flowstar-ui:task")
async def task_page(
    task_id: FromPath[str], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """A task's details, its form (generated from the step's JSON Schema) and its actions."""
    found = await _task_or_answer(task_id, engine, current_user, web_config)
    if not isinstance(found, HumanTask):
        return found
    return await _task_page(engine, found, current_user, web_config)


def posted_fields(form: Any) -> FormValues:
    """A posted form's fields (every value of each), without the CSRF token."""
    return {key: list(form.getall(key)) for key in form if key != "_csrf_token"}


@post("/tasks/{task_id:str}", name="flowstar-ui:task-complete", status_code=303)
async def complete(
    request: Request[Any, Any, Any],
    task_id: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Complete the task of the URL with the posted form (re-shown with errors on a 422).

    The engine decides who may: a refusal (claim it first, claimed by someone else,
    completed already) is shown on the task page with its 403 or 409.
    """
    found = await _task_or_answer(task_id, engine, current_user, web_config)
    if not isinstance(found, HumanTask):
        return found
    data, errors, values = read_post(found.form_schema, posted_fields(await request.form()))
    if not errors:
        user_id = None if current_user else ANONYMOUS
        try:
            await engine.complete_task(found.id, user_id, data, user=current_user)
        except FormValidationError as exc:
            errors = exc.field_errors
        except ValidationError as exc:
            errors = {"": [str(exc)]}
        except WorkflowsError as exc:
            return await _refused(engine, found, current_user, web_config, exc, values=values)
        else:
            return Redirect(path=f"{web_config.ui_path}/", status_code=303)
    return await _task_page(engine, found, current_user, web_config, status=422, values=values, errors=errors)


@post("/tasks/{task_id:str}/{action:str}", name="flowstar-ui:task-action", status_code=303)
async def task_action(
    request: Request[Any, Any, Any],
    *,
    task_id: FromPath[str],
    action: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Claim, unclaim, comment on or reassign the task, then 303 back to its page.

    A task the user may no longer see (reassigned away) sends them to the inbox instead.
    """
    found = await _task_or_answer(task_id, engine, current_user, web_config)
    if not isinstance(found, HumanTask):
        return found
    run = ACTIONS.get(action)
    if run is None:
        return message(web_config, current_user, 404, "No such action.")
    posted = posted_fields(await request.form())
    try:
        await run(ActionCall(engine, found, current_user, posted, web_config.user_directory))
    except WorkflowsError as exc:
        return await _refused(engine, found, current_user, web_config, exc, posted=posted)
    still_visible = not isinstance(await visible_task(engine, found.id, current_user), int)
    path = f"{web_config.ui_path}/tasks/{found.id}" if still_visible else f"{web_config.ui_path}/"
    return Redirect(path=path, status_code=303)


ROUTES = [login_page, login, logout, inbox, task_list, task_page, complete, task_action]
