"""Bulk actions in the inbox: select instances or tasks, act on all of them, follow the operation.

An admin (or, with no user provider, the trusted back office) gets a checkbox per row on
the instance list and the task list. Posting a selection submits one bulk operation
(``engine.bulk.submit`` with ``filter.ids``) and answers 303 to its progress page, which
polls itself with htmx every second until the operation finishes. Acting on every instance
that matches the list's filters goes through a confirmation page that shows the dry-run
count (``engine.bulk.count``) first. Every route asks who is asking before it reads the
form: anyone else gets a 403, and the engine checks again.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.bulk import BulkFilter, BulkOperation, BulkRequest
from flowstar.model.errors import BulkOperationNotFoundError, PermissionDeniedError, ValidationError, WorkflowsError
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.ui.forms import FormValues
from flowstar.web.ui.instance_list import InstanceFilter, instance_list_page
from flowstar.web.ui.instances import cancel_reason
from flowstar.web.ui.routes import ListFilter, inbox_page, message, page_context, posted_fields, sign_in_needed
from flowstar.web.ui.task_access import error_status, may_administer
from flowstar.web.ui.task_actions import ANONYMOUS, check_assignee

__all__ = ["BULK_ROUTES"]

_ACTIONS = {"cancel": "Cancel", "retry": "Retry"}
"""What may be done to instances in bulk, by the ``action`` a form posts, and its label."""


def _field(posted: FormValues, name: str) -> str:
    return (posted.get(name) or [""])[0].strip()


def _admin_or_answer(config: WebConfig, user: User | None) -> Template | Redirect | None:
    """None for an admin, else the answer: the sign-in page, or a 403 before the form is read."""
    redirect = sign_in_needed(config, user)
    if redirect:
        return redirect
    if not may_administer(user):
        return message(config, user, 403, "Bulk actions are for admins.")
    return None


def _selected(posted: FormValues, what: str) -> tuple[str, ...]:
    """The ticked ids, in order and once each.

    "Select all on this page" works without scripts too: the page's ids travel in hidden
    ``page_ids`` fields and the box alone says to take them all.

    Raises:
        ValidationError: nothing selected.
    """
    chosen = posted.get("page_ids") if _field(posted, "all_on_page") else posted.get("ids")
    ids = tuple(dict.fromkeys(value.strip() for value in chosen or () if value.strip()))
    if not ids:
        raise ValidationError(f"select at least one {what}")
    return ids


def _instance_request(posted: FormValues, selection: BulkFilter) -> BulkRequest:
    """A retry (from an optional step) or a cancel (with a required reason) of ``selection``.

    Raises:
        ValidationError: another action, or a cancel without a reason.
    """
    action = _field(posted, "action")
    if action == "cancel":
        return BulkRequest(kind="cancel", filter=selection, reason=cancel_reason(posted))
    if action == "retry":
        return BulkRequest(kind="retry", filter=selection, from_step=_field(posted, "from_step") or None)
    raise ValidationError("choose to retry or to cancel")


async def _submit(engine: Engine, user: User | None, request: BulkRequest) -> BulkOperation:
    # The back office acts as "anonymous", as the instance page's own actions do.
    return await engine.bulk.submit(request, user=user, created_by=ANONYMOUS if user is None else None)


def _shown_again(exc: WorkflowsError, posted: FormValues) -> dict[str, Any]:
    """How a list page shows a refused bulk form again: the reason, the ticked rows, the fields."""
    return {
        "status": error_status(exc),
        "bulk_notice": str(exc),
        "selected": set(posted.get("ids") or ()),
        "posted": posted,
    }


def _progress_path(config: WebConfig, operation: BulkOperation) -> Redirect:
    return Redirect(path=f"{config.ui_path}/bulk/{operation.id}", status_code=303)


@post("/bulk/instances", name="flowstar-ui:bulk-instances", status_code=303)
async def act_on_selected_instances(
    request: Request[Any, Any, Any], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """Retry or cancel the instances ticked on the list: one bulk operation, then its progress page.

    A refusal (nothing ticked, no reason, a malformed id) shows the list again, as it was
    posted, with the reason and a 4xx.
    """
    denied = _admin_or_answer(web_config, current_user)
    if denied:
        return denied
    posted = posted_fields(await request.form())
    try:
        ids = _selected(posted, "instance")
        operation = await _submit(engine, current_user, _instance_request(posted, BulkFilter(ids=ids)))
    except WorkflowsError as exc:
        return await instance_list_page(
            engine,
            current_user,
            web_config,
            InstanceFilter.from_form(posted),
            _field(posted, "cursor"),
            **_shown_again(exc, posted),
        )
    return _progress_path(web_config, operation)


async def _confirm_page(
    engine: Engine,
    user: User | None,
    config: WebConfig,
    shown: InstanceFilter,
    action: str,
    *,
    status: int = 200,
    notice: str = "",
    posted: FormValues | None = None,
) -> Template:
    """What acting on every matching instance would touch: the filters and the dry-run count."""
    context: dict[str, Any] = {
        "filters": shown,
        "query": shown.query(),
        "action": action,
        "label": _ACTIONS.get(action, ""),
        "count": None,
        "statuses": (),
        "notice": notice,
        "posted": posted or {},
    }
    try:
        if action not in _ACTIONS:
            raise ValidationError("choose to retry or to cancel")
        counted = BulkRequest(kind="cancel" if action == "cancel" else "retry", filter=shown.bulk_filter())
        context.update(count=await engine.bulk.count(counted, user=user), statuses=counted.statuses())
    except WorkflowsError as exc:
        status = error_status(exc)
        context["notice"] = str(exc)
    return Template(
        template_name="flowstar/bulk_confirm.html", context=page_context(config, user, **context), status_code=status
    )


@get("/bulk/instances/matching", name="flowstar-ui:bulk-matching")
async def confirm_matching(
    request: Request[Any, Any, Any], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """The confirmation before acting on every instance the list's filters match: the dry run.

    The query is the list's: ``action`` (cancel or retry) and its filters.
    """
    denied = _admin_or_answer(web_config, current_user)
    if denied:
        return denied
    asked = posted_fields(request.query_params)
    return await _confirm_page(
        engine, current_user, web_config, InstanceFilter.from_form(asked), _field(asked, "action")
    )


@post("/bulk/instances/matching", name="flowstar-ui:bulk-matching-post", status_code=303)
async def act_on_matching_instances(
    request: Request[Any, Any, Any], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """Retry or cancel every instance the posted filters match, then its progress page.

    A refusal shows the confirmation page again (with the count as it is now) and a 4xx.
    """
    denied = _admin_or_answer(web_config, current_user)
    if denied:
        return denied
    posted = posted_fields(await request.form())
    shown = InstanceFilter.from_form(posted)
    try:
        operation = await _submit(engine, current_user, _instance_request(posted, shown.bulk_filter()))
    except WorkflowsError as exc:
        action = _field(posted, "action")
        return await _confirm_page(
            engine, current_user, web_config, shown, action, status=error_status(exc), notice=str(exc), posted=posted
        )
    return _progress_path(web_config, operation)


def _reassign_request(posted: FormValues, config: WebConfig, user: User | None) -> BulkRequest:
    """A reassignment of the ticked tasks to a user and/or a group, with a required reason.

    Raises:
        ValidationError: nothing ticked, no target, no reason, a user the directory does not know.
    """
    ids = _selected(posted, "task")
    to_user, to_group, reason = _field(posted, "assignee"), _field(posted, "group"), _field(posted, "reason")
    if not (to_user or to_group):
        raise ValidationError("name the user or the group to give the tasks to")
    if not reason:
        raise ValidationError("a reassignment needs a reason")
    if to_user:
        check_assignee(config.user_directory, user, to_user)
    return BulkRequest(
        kind="reassign", filter=BulkFilter(ids=ids), to_user=to_user or None, to_group=to_group or None, reason=reason
    )


@post("/bulk/tasks", name="flowstar-ui:bulk-tasks", status_code=303)
async def reassign_selected_tasks(
    request: Request[Any, Any, Any], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """Reassign the tasks ticked in the inbox: one bulk operation, then its progress page.

    A refusal shows the inbox again, with the selection and the fields kept, and a 4xx.
    """
    denied = _admin_or_answer(web_config, current_user)
    if denied:
        return denied
    posted = posted_fields(await request.form())
    try:
        operation = await _submit(engine, current_user, _reassign_request(posted, web_config, current_user))
    except WorkflowsError as exc:
        tab, overdue = _field(posted, "tab") or "open", _field(posted, "overdue") == "true"
        shown = ListFilter(tab, _field(posted, "workflow"), overdue)
        return await inbox_page(engine, current_user, web_config, shown, **_shown_again(exc, posted))
    return _progress_path(web_config, operation)


async def _progress(
    engine: Engine, user: User | None, config: WebConfig, operation_id: str, template: str
) -> Template | Redirect:
    """The operation's progress in ``template``, or the answer instead (sign-in, 403, 404)."""
    denied = _admin_or_answer(config, user)
    if denied:
        return denied
    try:
        operation = await engine.bulk.get(operation_id, user=user)
    except BulkOperationNotFoundError:
        return message(config, user, 404, "No such bulk operation.")
    except PermissionDeniedError:
        return message(config, user, 403, "Bulk actions are for admins.")
    on_instances = operation.request.kind != "reassign"
    context = page_context(
        config,
        user,
        operation=operation,
        label={**_ACTIONS, "reassign": "Reassign"}[operation.request.kind],
        items="instances" if on_instances else "tasks",
        back=f"{config.ui_path}/instances" if on_instances else f"{config.ui_path}/",
    )
    return Template(template_name=template, context=context)


@get("/bulk/{operation_id:str}", name="flowstar-ui:bulk")
async def progress_page(
    operation_id: FromPath[str], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """A bulk operation's status and counts; polls itself every second until it finishes."""
    return await _progress(engine, current_user, web_config, operation_id, "flowstar/bulk.html")


@get("/fragments/bulk/{operation_id:str}", name="flowstar-ui:bulk-progress")
async def progress_fragment(
    operation_id: FromPath[str], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Response[Any]:
    """The progress alone, what the page's htmx polling fetches (without a poll once finished)."""
    answer = await _progress(engine, current_user, web_config, operation_id, "flowstar/bulk_progress.html")
    if isinstance(answer, Redirect):
        return Response(content="", status_code=401)
    return answer


BULK_ROUTES = [
    act_on_selected_instances,
    confirm_matching,
    act_on_matching_instances,
    reassign_selected_tasks,
    progress_page,
    progress_fragment,
]
