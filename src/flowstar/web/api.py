"""The REST API: definitions, instances, tasks (the routes under ``path_prefix``)."""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.errors import PermissionDeniedError, TaskNotFoundError
from flowstar.model.mermaid import render_mermaid
from flowstar.model.state import HumanTask
from flowstar.web.auth import require_admin, require_user
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
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
# Idempotency keys per engine (two apps in one process never share them): key -> instance id.
_IDEMPOTENCY: weakref.WeakKeyDictionary[Engine, dict[str, str]] = weakref.WeakKeyDictionary()
_IDEMPOTENCY_LOCK = asyncio.Lock()


def _check_uuid(value: str, what: str) -> str:
    # A malformed id names nothing: 404, like an unknown one (never a 500).
    try:
        UUID(value)
    except ValueError:
        raise NotFoundException(f"no {what} with id {value}") from None
    return value


def _accepts_user(method: Callable[..., Any]) -> bool:
    return "user" in inspect.signature(method).parameters


async def _as_user(method: Callable[..., Any], user: User | None, *args: Any, **kwargs: Any) -> Any:
    """Call an engine method on behalf of ``user`` (the engine enforces who may do what).

    An engine method without a ``user`` parameter is called as a trusted back end: the
    routes check beforehand (``visible_task``, the admin guard) what such a call may not.
    """
    if _accepts_user(method):
        kwargs["user"] = user
    return await method(*args, **kwargs)


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
    if key is None:
        instance = await engine.start_workflow(
            data.definition_name, data.input_data, data.version, tenant_id=tenant_id, created_by=created_by
        )
        return InstanceOut(**instance_out(instance))
    scoped_key = f"{tenant_id or ''}\x00{key}"
    # One lock: two requests with one key never both start (see docs/web.md, idempotency).
    async with _IDEMPOTENCY_LOCK:
        keys = _IDEMPOTENCY.setdefault(engine, {})
        known = keys.get(scoped_key)
        if known is not None:
            return InstanceOut(**instance_out(await engine.get_instance(known)))
        instance = await engine.start_workflow(
            data.definition_name,
            data.input_data,
            data.version,
            tenant_id=tenant_id,
            created_by=created_by,
            metadata={"idempotency_key": key},
        )
        keys[scoped_key] = str(instance.id)
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
    instance = await _visible_instance(engine, current_user, instance_id)
    history = await engine.get_history(instance_id)
    return InstanceDetail(**instance_out(instance), history=history)


async def _visible_instance(engine: Engine, user: User | None, instance_id: str) -> Any:
    if _accepts_user(engine.get_instance):
        return await _as_user(engine.get_instance, user, instance_id)
    instance = await engine.get_instance(instance_id)
    if user is not None and instance.tenant_id != user.tenant_id:
        from flowstar.model.errors import InstanceNotFoundError

        raise InstanceNotFoundError(instance_id)
    return instance


@post("/instances/{instance_id:str}/cancel", summary="Cancel an instance (admin)", status_code=200)
async def cancel_instance(
    engine: EngineDep,
    current_user: CurrentUser,
    instance_id: FromPath[str],
    data: JSONBody[CancelRequest | None] = None,
) -> InstanceOut:
    """Cancel a running or waiting instance."""
    _check_uuid(instance_id, "instance")
    await _visible_instance(engine, current_user, instance_id)
    reason = data.reason if data is not None else "canceled"
    by = current_user.id if current_user is not None else None
    return InstanceOut(**instance_out(await _as_user(engine.cancel_workflow, current_user, instance_id, reason, by)))


@post("/instances/{instance_id:str}/retry", summary="Retry an instance from a step (admin)", status_code=200)
async def retry_instance(
    engine: EngineDep, current_user: CurrentUser, instance_id: FromPath[str], data: JSONBody[RetryRequest | None] = None
) -> InstanceOut:
    """Retry a failed instance from ``from_step`` (default: the step that failed)."""
    _check_uuid(instance_id, "instance")
    await _visible_instance(engine, current_user, instance_id)
    from_step = data.from_step if data is not None else None
    return InstanceOut(**instance_out(await _as_user(engine.retry, current_user, instance_id, from_step)))


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
        user=current_user,
        limit=limit or web_config.default_page_size,
        cursor=cursor,
    )
    return _paged(request, page.items, page.next_cursor)


async def visible_task(engine: Engine, user: User | None, task_id: str) -> HumanTask:
    """The task when ``user`` may see it.

    Raises:
        TaskNotFoundError: unknown, malformed or another tenant's id.
        PermissionDeniedError: not the user's task.
    """
    try:
        UUID(task_id)
    except ValueError:
        raise TaskNotFoundError(f"no task with id {task_id}") from None
    if _accepts_user(engine.get_task):
        task: HumanTask = await _as_user(engine.get_task, user, task_id)
        return task
    task = await engine.get_task(task_id)
    if user is None:
        return task
    if task.tenant_id != user.tenant_id:
        raise TaskNotFoundError(f"no task with id {task_id}")
    # Until the engine takes user=: the engine's own inbox query says whether it is the user's.
    mine = await engine.find_tasks(instance_id=task.instance_id, status=task.status, user=user, limit=500)
    if not any(t.id == task.id for t in mine.items):
        raise PermissionDeniedError("this task is not yours")
    return task


@get("/tasks/{task_id:str}", summary="A task with its form schema")
async def get_task(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> HumanTask:
    """The task (``form_schema`` is the JSON Schema of the data it expects)."""
    return await visible_task(engine, current_user, task_id)


@post("/tasks/{task_id:str}/complete", summary="Complete a task", status_code=200)
async def complete_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[CompleteTaskRequest]
) -> InstanceOut:
    """Submit the task's form; with a user provider, ``completed_by`` is the signed-in user."""
    await visible_task(engine, current_user, task_id)
    if current_user is not None:
        if data.completed_by not in (None, current_user.id):
            raise PermissionDeniedError("completed_by must be the signed-in user")
        completed_by: str | None = current_user.id
    else:
        completed_by = data.completed_by
    if _accepts_user(engine.complete_task):
        instance = await _as_user(engine.complete_task, current_user, task_id, completed_by, data.output_data)
    else:
        instance = await engine.complete_task(task_id, completed_by or "", data.output_data)
    return InstanceOut(**instance_out(instance))


@post("/tasks/{task_id:str}/reassign", summary="Reassign / delegate a task", status_code=200)
async def reassign_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[ReassignRequest]
) -> HumanTask:
    """Give the task to another user or group, with a reason."""
    await visible_task(engine, current_user, task_id)
    kwargs: dict[str, Any] = {"assignee_group": data.assignee_group}
    kwargs["reassigned_by"] = current_user.id if current_user is not None else None
    if "reason" in inspect.signature(engine.reassign_task).parameters:
        kwargs["reason"] = data.reason
    task: HumanTask = await _as_user(engine.reassign_task, current_user, task_id, data.assignee_id, **kwargs)
    return task


def _task_action(name: str, summary: str) -> Any:
    @post(f"/tasks/{{task_id:str}}/{name}", summary=summary, status_code=200, operation_id=f"{name}Task")
    async def action(engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str]) -> HumanTask:
        _check_uuid(task_id, "task")
        method = getattr(engine, f"{name}_task", None)
        if method is None:
            raise NotFoundException(f"this engine has no {name} for tasks")
        task: HumanTask = await _as_user(method, current_user, task_id)
        return task

    return action


@post("/tasks/{task_id:str}/comments", summary="Comment on a task", status_code=201)
async def comment_task(
    engine: EngineDep, current_user: CurrentUser, task_id: FromPath[str], data: JSONBody[CommentRequest]
) -> Any:
    """Add a comment to the task's audit trail."""
    _check_uuid(task_id, "task")
    method = getattr(engine, "comment_task", None)
    if method is None:
        raise NotFoundException("this engine has no task comments")
    return await _as_user(method, current_user, task_id, data.text)


def api_router(config: WebConfig) -> Router:
    """The REST API router at ``config.path_prefix``."""
    from flowstar.web.events import events_route
    from flowstar.web.webhooks import webhook_routes

    guards: list[Any] = [require_user]
    if config.auth_guard is not None:
        guards.append(config.auth_guard)
    admin = Router(
        path="/",
        route_handlers=[cancel_instance, retry_instance],
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
        _task_action("claim", "Claim a task"),
        _task_action("unclaim", "Unclaim a task"),
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
