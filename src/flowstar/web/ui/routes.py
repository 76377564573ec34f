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
from flowstar.model.errors import FormValidationError, ValidationError
from flowstar.model.state import HumanTask
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.ui.forms import FormValues, form_context, read_post
from flowstar.web.ui.task_access import visible_task

__all__ = ["ROUTES", "message", "page_context", "sign_in_needed"]

ANONYMOUS = "anonymous"
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
    request.set_session({"user_id": user.id})
    return Redirect(path=f"{web_config.ui_path}/", status_code=303)


@post("/logout", name="flowstar-ui:logout", status_code=303)
async def logout(request: Request[Any, Any, Any], web_config: WebConfigDep) -> Redirect:
    """End the session."""
    request.clear_session()
    return Redirect(path=f"{web_config.ui_path}/login", status_code=303)


@dataclass(frozen=True)
class ListFilter:
    """The inbox's filters, from the query string."""

    tab: str = "open"
    workflow: str | None = None
    overdue: bool = False

    def query(self) -> str:
        """The filters as a query string (for the live fragment and the next page)."""
        params: dict[str, str] = {"tab": self.tab}
        if self.workflow:
            params["workflow"] = self.workflow
        if self.overdue:
            params["overdue"] = "true"
        return urlencode(params)


async def _list_context(engine: Engine, user: User | None, shown: ListFilter, cursor: str | None) -> dict[str, Any]:
    tab = shown.tab if shown.tab in _TABS else "open"
    shown = ListFilter(tab=tab, workflow=shown.workflow or None, overdue=shown.overdue and tab != "completed")
    status, claimable = _TABS[tab]
    kwargs: dict[str, Any] = {
        "status": status,
        "claimable": claimable,
        "user": user,
        "cursor": cursor or None,
        "workflow_name": shown.workflow,
        "overdue": shown.overdue,
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
    }


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
    cursor: FromQuery[str | None] = None,
) -> Template | Redirect:
    """The inbox: open tasks or recently completed ones, refreshed live over SSE."""
    redirect = sign_in_needed(web_config, current_user)
    if redirect:
        return redirect
    context = await _list_context(engine, current_user, ListFilter(tab, workflow, overdue), cursor)
    return Template(template_name="flowstar/inbox.html", context=page_context(web_config, current_user, **context))


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
) -> Template | Response[Any]:
    """The task table alone, fetched by htmx when a task event arrives."""
    if sign_in_needed(web_config, current_user):
        return Response(content="", status_code=401)
    context = await _list_context(engine, current_user, ListFilter(tab, workflow, overdue), None)
    return Template(template_name="flowstar/task_list.html", context=page_context(web_config, current_user, **context))


def _task_context(task: HumanTask, values: FormValues | None, errors: dict[str, list[str]], now: Any) -> dict[str, Any]:
    return {
        "task": task,
        **form_context(task.form_schema, values, errors, task.data),
        "overdue": task.due_at is not None and task.due_at < now,
    }


_DENIED = {404: "No such task.", 403: "This task is not yours."}


async def _task_or_answer(
    request: Request[Any, Any, Any], task_id: str, engine: Engine, user: User | None, config: WebConfig
) -> HumanTask | Template | Redirect:
    """The URL's task if the user may see it, else the page to answer with (sign-in, 403, 404)."""
    redirect = sign_in_needed(config, user)
    if redirect:
        return redirect
    found = await visible_task(engine, task_id, user)
    if isinstance(found, int):
        return message(config, user, found, _DENIED[found])
    return found


@get("/tasks/{task_id:str}", name="flowstar-ui:task")
async def task_page(
    request: Request[Any, Any, Any],
    task_id: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """A task's details and its form (generated from the step's JSON Schema)."""
    found = await _task_or_answer(request, task_id, engine, current_user, web_config)
    if not isinstance(found, HumanTask):
        return found
    context = _task_context(found, None, {}, engine.clock.now())
    return Template(template_name="flowstar/task.html", context=page_context(web_config, current_user, **context))


@post("/tasks/{task_id:str}", name="flowstar-ui:task-complete", status_code=303)
async def complete(
    request: Request[Any, Any, Any],
    task_id: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Complete the task of the URL with the posted form (re-shown with errors on a 422)."""
    found = await _task_or_answer(request, task_id, engine, current_user, web_config)
    if not isinstance(found, HumanTask):
        return found
    posted = await request.form()
    values: FormValues = {key: list(posted.getall(key)) for key in posted if key != "_csrf_token"}
    data, errors = read_post(found.form_schema, values)
    if not errors:
        try:
            await engine.complete_task(found.id, current_user.id if current_user else ANONYMOUS, data)
        except FormValidationError as exc:
            errors = exc.field_errors
        except ValidationError as exc:
            errors = {"": [str(exc)]}
        else:
            return Redirect(path=f"{web_config.ui_path}/", status_code=303)
    context = _task_context(found, values, errors, engine.clock.now())
    return Template(
        template_name="flowstar/task.html",
        context=page_context(web_config, current_user, **context),
        status_code=422,
    )


ROUTES = [login_page, login, logout, inbox, task_list, task_page, complete]
