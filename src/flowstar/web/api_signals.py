"""REST routes for signals, external events and named actions (under ``path_prefix``).

As in ``flowstar.web.api``, the signed-in user goes to the engine, which decides: a signal
for one instance needs a user who may see it, a signal for every waiting instance an admin;
an action completes the open task of the step that carries the action's name, under the
task rules (assignee, groups, claims, tenant).  Without a user provider (a trusted back
end) the body may name the tenant.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.enums import TaskStatus
from flowstar.model.steps import BaseHumanStep
from flowstar.web.deps import CurrentUser, EngineDep
from flowstar.web.schemas import EventOut, EventRequest, InstanceOut, SignalOut, SignalRequest, instance_out

__all__ = ["signal_routes"]


@post("/signals", summary="Send a signal (to one instance, or every waiting one)", status_code=200)
async def send_signal(engine: EngineDep, current_user: CurrentUser, data: JSONBody[SignalRequest]) -> SignalOut:
    """Its payload is merged into the data of the instances it wakes; later waits receive it too."""
    tenant_id = current_user.tenant_id if current_user is not None else data.tenant_id
    woken = await engine.signal(
        data.name, data.payload, instance_id=data.instance_id, tenant_id=tenant_id, user=current_user
    )
    return SignalOut(woken=woken)


@post("/events", summary="Report an external event", status_code=200)
async def report_event(engine: EngineDep, current_user: CurrentUser, data: JSONBody[EventRequest]) -> EventOut:
    """It wakes the instances waiting for it and starts the workflows it triggers."""
    tenant_id = current_user.tenant_id if current_user is not None else data.tenant_id
    event_id = await engine.report_event(
        data.name, data.entity_id, at=data.at, payload=data.payload, tenant_id=tenant_id
    )
    return EventOut(id=event_id)


@post("/actions/{name:str}", summary="Complete a step by its action name", status_code=200)
async def run_action(
    engine: EngineDep, current_user: CurrentUser, name: FromPath[str], data: JSONBody[dict[str, Any]]
) -> InstanceOut:
    """Body: ``instance_id`` and the step's fields (``completed_by`` only for a trusted back end)."""
    fields = dict(data)
    instance_id = fields.pop("instance_id", None)
    completed_by = fields.pop("completed_by", None)
    if not isinstance(instance_id, str) or not _is_uuid(instance_id):
        raise ValidationException("instance_id: the id of the instance whose step the action completes")
    task_id = await _open_task_of_action(engine, current_user, instance_id, name)
    instance = await engine.complete_task(task_id, completed_by, fields, user=current_user)
    return InstanceOut(**instance_out(instance))


async def _open_task_of_action(engine: Engine, user: User | None, instance_id: str, action: str) -> str:
    """The open task of the instance's step named ``action``; 404 when there is none.

    The instance is looked up as ``user`` sees it: another tenant's is as unknown as a
    made-up id, and one the user may not open says nothing about its steps.
    """
    instance = await engine.get_instance(instance_id, user=user)
    definition = engine.registry.get_definition(instance.workflow_name, instance.workflow_version)
    for task in await engine.get_tasks(instance_id=instance_id, status=TaskStatus.PENDING):
        step = definition.steps.get(task.step_name)
        if isinstance(step, BaseHumanStep) and step.action == action:
            return task.id
    # The complete call checks who may act; an instance without such a task is 404 for anyone.
    raise NotFoundException(f"instance {instance_id} has no open step for action {action!r}")


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def signal_routes() -> list[Any]:
    """The handlers, for the API router."""
    return [send_signal, report_event, run_action]
