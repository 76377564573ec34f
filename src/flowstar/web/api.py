"""The REST API: definitions, instances, tasks (the routes under ``path_prefix``).

The routes pass the signed-in user (None without a user provider: a trusted back end) to the
engine as ``user=``; the engine decides who may see and do what, and its errors become 4xx
answers through ``flowstar.web.errors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ClientException, HTTPException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.errors import PermissionDeniedError, ValidationError
from flowstar.model.mermaid import render_mermaid
from flowstar.model.state import HumanTask, TaskAuditEntry
from flowstar.model.task_transitions import check_comment
from flowstar.web.auth import require_admin, require_user
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, MinPriority, WebConfigDep
from flowstar.web.errors import http_error_handler
from flowstar.web.schemas import (
    CancelRequest,
    CommentRequest,
    CompleteTaskRequest,
    DefinitionOut,
    GraphOut,
    InstanceDetail,
    InstanceOut,
    ReassignRequest,
    RetryRequest,
    StartInstanceRequest,
    instance_out,
)

__all__ = ["api_router", "visible_task"]

_LINK = ResponseHeader(
    name="Link", description='`<url>; rel="next"` when another page follows', documentation_only=True
)


def _check_uuid(value: str, what: str) -> str:
    # A malformed id names nothing: 404, like an unknown one (never a 500).
    try:
        UUID(value)
    except ValueError:
        raise NotFoundException(f"no {what} with id {value}") from None
    return value


def _checked_text(value: str, field: str, what: str) -> str:
    """A comment's or reason's text as the engine will take it; a 400 pointing at ``field`` otherwise."""
    # The engine refuses the same text with a ValidationError; checked here first so that the
    # answer is a request error naming the member, like every other bad body.
    try:
        return check_comment(value, what)
    except ValidationError as exc:
        raise ValidationException(str(exc), extra=[{"key": field, "message": str(exc), "source": "body"}]) from None


def _paged(request: Request[Any, Any, Any], items: list[Any], next_cursor: str | None) -> Response[list[Any]]:
    headers: dict[str, str] = {}
    if next_cursor is not None:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["cursor"] = next_cursor
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return Response(items, headers=headers)


# -- definitions ----------------------------------------------------------------------------


def _definition(engine: Engine, name: str, version: str | None) -> Any:
    return engine.registry.get_definition(name, version)


@get("/definitions", summary="List workflow definitions")
async def list_definitions(engine: EngineDep) -> list[DefinitionOut]:
    """Every active definition (latest versions)."""
    return [DefinitionOut(**d.describe()) for d in engine.registry.list_definitions()]


@get("/definitions/{name:str}", summary="A workflow definition")
async def get_definition(
    engine: EngineDep, name: FromPath[str], version: FromQuery[str | None] = None
) -> DefinitionOut:
    """One definition (the latest version unless ``?version=``)."""
    return DefinitionOut(**_definition(engine, name, version).describe())


@get("/definitions/{name:str}/graph", summary="A definition's graph (Mermaid and JSON)")
async def get_graph(engine: EngineDep, name: FromPath[str], version: FromQuery[str | None] = None) -> GraphOut:
    """The graph as Mermaid flowchart text and as JSON nodes and edges."""
    definition = _definition(engine, name, version)
    described = definition.describe()
    return GraphOut(mermaid=render_mermaid(definition), nodes=described["steps"], edges=described["edges"])


# -- instances ------------------------------------------------------------------------------


@post("/instances", summary="Start an instance", status_code=200)
async def start_instance(
    engine: EngineDep,
    current_user: CurrentUser,
    data: JSONBody[StartInstanceRequest],
    idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)] = None,
) -> InstanceOut:
    """Start an instance; the same idempotency key answers with the same instance."""
    key = idempotency_key or data.idempotency_key
    created_by = current_user.id if current_user is not None else data.created_by
    tenant_id = current_user.tenant_id if current_user is not None else data.tenant_id
    if current_user is not None and data.created_by not in (None, current_user.id):
        raise PermissionDeniedError("created_by must be the signed-in user")
    # The key is unique per tenant in the store: a repeated or racing start returns the first instance.
    instance = await engine.start_workflow(
        data.definition_name,
        data.input_data,
        data.version,
        tenant_id=tenant_id,
        created_by=created_by,
        idempotency_key=key,
    )
    return InstanceOut(**instance_out(instance))


@get("/instances", summary="List instances (newest first)", response_headers=[_LINK])
async def list_instances(
    *,
    request: Request[Any, Any, Any],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    workflow: FromQuery[str | None] = None,
    status: FromQuery[WorkflowStatus | None] = None,
    created_by: FromQuery[str | None] = None,
    created_after: FromQuery[datetime | None] = None,
    created_before: FromQuery[datetime | None] = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[list[InstanceOut]]:
    """A page of instances; the next page's URL is in the ``Link`` header."""
    page = await engine.find_instances(
        workflow_name=workflow,
        status=status,
        created_by=created_by,
        created_after=created_after,
        created_before=created_before,
        user=current_user,
        limit=limit or web_config.default_page_size,
        cursor=cursor,
    )
    return _paged(request, [InstanceOut(**instance_out(i)) for i in page.items], page.next_cursor)


@get("/instances/{instance_id:str}", summary="An instance with its step history")
async def get_instance(engine: EngineDep, current_user: CurrentUser, instance_id: FromPath[str]) -> InstanceDetail:
    """The instance, its data and its history."""
    _check_uuid(instance_id, "instance")
    instance = await engine.get_instance(instance_id, user=current_user)
    history = await engine.get_history(instance_id)
    return InstanceDetail(**instance_out(instance), history=history)


@post("/instances/{instance_id:str}/cancel", summary="Cancel an instance (admin)", status_code=200)
async def cancel_instance(
    engine: EngineDep,
    current_user: CurrentUser,
    instance_id: FromPath[str],
    data: JSONBody[CancelRequest | None] = None,
) -> InstanceOut:
    """Cancel a running or waiting instance (the engine checks the user is an admin of its tenant)."""
    _check_uuid(instance_id, "instance")
    reason = data.reason if data is not None else "canceled"
    return InstanceOut(**instance_out(await engine.cancel_workflow(instance_id, reason, user=current_user)))


@post("/instances/{instance_id:str}/retry", summary="Retry an instance from a step (admin)", status_code=200)
async def retry_instance(
    engine: EngineDep, current_user: CurrentUser, instance_id: FromPath[str], data: JSONBody[RetryRequest | None] = None
) -> InstanceOut:
    """Retry a failed instance from ``from_step`` (default: the step that failed)."""
    _check_uuid(instance_id, "instance")
    from_step = data.from_step if data is not None else None
    return InstanceOut(**instance_out(await engine.retry(instance_id, from_step, user=current_user)))


# -- tasks ------------------------------------------------------------------------------------


@get("/tasks", summary="List tasks (the caller's, oldest first)", response_headers=[_LINK])
async def list_tasks(
    *,
    request: Request[Any, Any, Any],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    status: FromQuery[TaskStatus | None] = None,
    assignee: FromQuery[str | None] = None,
    group: FromQuery[str | None] = None,
    workflow: FromQuery[str | None] = None,
    instance_id: FromQuery[str | None] = None,
    due_before: FromQuery[datetime | None] = None,
    overdue: FromQuery[bool] = False,
    min_priority: MinPriority = None,
    limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
    cursor: FromQuery[str | None] = None,
) -> Response[list[HumanTask]]:
    """A page of tasks (with a user provider: only the user's); next page in ``Link``."""
    if instance_id is not None:
        _check_uuid(instance_id, "instance")
    page = await engine.find_tasks(
        status=status,
        assignee_id=assignee,
        group=group,
        workflow_name=workflow,
        instance_id=instance_id,
        due_before=due_before,
        overdue=overdue,
        min_priority=min_priority,
        user=current_user,
        limit=limit or web_config.default_page_size,
        cursor=cursor,
    )
    return _paged(request, page.items, page.next_cursor)


async def visible_task(engine: Engine, user: User | None, task_id: str) -> HumanTask:
    """The task when ``user`` may see it (the engine's rules; ``None``: a trusted back end).

    Raises:
        TaskNotFoundError: unknown, malformed or another tenant's id.
        PermissionDeniedError: not the user's task.
    """
    return await engine.get_task(task_id, user=user)


@get("/tasks/{task_id:str}", summary="A task with its form schema")
async def get_task(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> HumanTask:
    """The task (``form_schema`` is the JSON Schema of the data it expects)."""
    _check_uuid(task_id, "task")
    return await visible_task(engine, current_user, task_id)


@get("/tasks/{task_id:str}/audit", summary="A task's audit trail (oldest first)")
async def task_audit(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> list[TaskAuditEntry]:
    """Who created, claimed, unclaimed, reassigned, commented on, completed or escalated the task, and when."""
    _check_uuid(task_id, "task")
    return await engine.task_audit(task_id, user=current_user)


@post("/tasks/{task_id:str}/complete", summary="Complete a task", status_code=200)
async def complete_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[CompleteTaskRequest]
) -> InstanceOut:
    """Submit the task's form.

    With a user provider the signed-in user completes it (another ``completed_by`` is 403);
    without one the task's ``completed_by`` is the body's, None when the body names nobody.
    """
    _check_uuid(task_id, "task")
    instance = await engine.complete_task(task_id, data.completed_by, data.output_data, user=current_user)
    return InstanceOut(**instance_out(instance))


@post("/tasks/{task_id:str}/reassign", summary="Reassign / delegate a task", status_code=200)
async def reassign_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[ReassignRequest]
) -> HumanTask:
    """Give the task to another user or group, with a reason (kept in the audit trail)."""
    _check_uuid(task_id, "task")
    reason = _checked_text(data.reason, "reason", "reason") if data.reason is not None else None
    return await engine.reassign_task(
        task_id, data.assignee_id, assignee_group=data.assignee_group, reason=reason, user=current_user
    )


@post("/tasks/{task_id:str}/claim", summary="Claim a task", status_code=200, operation_id="claimTask")
async def claim_task(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> HumanTask:
    """The signed-in user claims the task (409 when someone else has)."""
    _check_uuid(task_id, "task")
    if current_user is None:
        # A claim names its claimer; a trusted back end has none. An unknown task stays 404.
        await engine.get_task(task_id)
        raise ClientException("claiming a task needs a signed-in user (configure a user provider)")
    return await engine.claim_task(task_id, user=current_user)


@post("/tasks/{task_id:str}/unclaim", summary="Unclaim a task", status_code=200, operation_id="unclaimTask")
async def unclaim_task(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> HumanTask:
    """End the task's claim (its claimer or an admin; 409 when nobody has claimed it)."""
    _check_uuid(task_id, "task")
    return await engine.unclaim_task(task_id, user=current_user)


@post("/tasks/{task_id:str}/comments", summary="Comment on a task", status_code=201)
async def comment_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[CommentRequest]
) -> TaskAuditEntry:
    """Add a comment to the task's audit trail; answers with the new audit entry."""
    _check_uuid(task_id, "task")
    return await engine.comment_task(task_id, _checked_text(data.text, "text", "comment"), user=current_user)


def api_router(config: WebConfig) -> Router:
    """The REST API router at ``config.path_prefix``."""
    from flowstar.web.api_bulk import bulk_routes
    from flowstar.web.api_signals import signal_routes
    from flowstar.web.events import events_route
    from flowstar.web.webhooks import webhook_routes

    guards: list[Any] = [require_user]
    if config.auth_guard is not None:
        guards.append(config.auth_guard)
    admin = Router(
        path="/",
        route_handlers=[cancel_instance, retry_instance, *bulk_routes()],
        guards=[config.admin_guard or require_admin],
    )
    handlers: list[Any] = [
        list_definitions,
        get_definition,
        get_graph,
        start_instance,
        list_instances,
        get_instance,
        list_tasks,
        get_task,
        complete_task,
        reassign_task,
        comment_task,
        task_audit,
        claim_task,
        unclaim_task,
        *signal_routes(),
    ]
    if config.enable_admin:
        handlers.append(admin)
    api = Router(path="/", route_handlers=handlers, guards=guards)
    return Router(
        path=config.path_prefix or "/",
        route_handlers=[api, events_route, *webhook_routes()],
        exception_handlers={HTTPException: http_error_handler},
        request_max_body_size=config.request_max_body_size,
        tags=["flowstar"],
    )
