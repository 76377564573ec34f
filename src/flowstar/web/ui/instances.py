"""Pages to start a workflow and to follow an instance (status, data, steps, diagram).

An admin (or, with no user provider, the trusted back office) may also cancel an active
instance and retry a failed one from a step of its definition; the engine checks again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from flowstar.engine.core import Engine
from flowstar.engine.views import WorkflowInstance
from flowstar.model.access import User
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, WorkflowStatus
from flowstar.model.errors import FormValidationError, ValidationError, WorkflowsError
from flowstar.model.mermaid import render_mermaid
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.ui.forms import FormValues, form_context, read_post
from flowstar.web.ui.instance_list import instance_list
from flowstar.web.ui.routes import message, page_context, posted_fields, sign_in_needed
from flowstar.web.ui.task_access import error_status, may_administer, visible_instance
from flowstar.web.ui.task_actions import ANONYMOUS

__all__ = ["INSTANCE_ROUTES", "REASON_LIMIT", "cancel_reason"]

REASON_LIMIT = 1000
"""The longest cancellation reason the pages accept."""


@get("/start", name="flowstar-ui:start-list")
async def start_list(
    request: Request[Any, Any, Any], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """The workflows one may start."""
    redirect = sign_in_needed(web_config, current_user)
    if redirect:
        return redirect
    definitions = sorted(engine.registry.list_definitions(), key=lambda d: d.name)
    context = page_context(web_config, current_user, definitions=definitions)
    return Template(template_name="flowstar/start_list.html", context=context)


def _start_context(
    definition: WorkflowDefinition, values: dict[str, list[str]] | None, errors: dict[str, list[str]]
) -> dict[str, Any]:
    # With an input schema a generated form, without one a JSON textarea.
    return {"definition": definition, **form_context(definition.input_schema, values, errors)}


async def _definition_or_answer(
    name: str, engine: Engine, user: User | None, config: WebConfig
) -> WorkflowDefinition | Template | Redirect:
    """The workflow's definition, or the page to answer with (sign-in, 404)."""
    redirect = sign_in_needed(config, user)
    if redirect:
        return redirect
    try:
        return engine.registry.get_definition(name)
    except (WorkflowsError, KeyError):
        return message(config, user, 404, "No such workflow.")


@get("/start/{name:str}", name="flowstar-ui:start")
async def start_page(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """The initial data form of one workflow."""
    definition = await _definition_or_answer(name, engine, current_user, web_config)
    if isinstance(definition, (Template, Redirect)):
        return definition
    context = page_context(web_config, current_user, **_start_context(definition, None, {}))
    return Template(template_name="flowstar/start.html", context=context)


@post("/start/{name:str}", name="flowstar-ui:start-post", status_code=303)
async def start(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Start the workflow for the signed-in user (their tenant, created by them)."""
    definition = await _definition_or_answer(name, engine, current_user, web_config)
    if isinstance(definition, (Template, Redirect)):
        return definition
    data, errors, values = read_post(definition.input_schema, posted_fields(await request.form()))
    if not errors:
        try:
            instance = await engine.start_workflow(
                name,
                data,
                tenant_id=current_user.tenant_id if current_user else None,
                created_by=current_user.id if current_user else None,
            )
        except FormValidationError as exc:
            # The engine checks the data against the input schema: each message on its field.
            errors = exc.field_errors or {"": [str(exc)]}
        except ValidationError as exc:
            errors = {"": [str(exc)]}
        else:
            return Redirect(path=f"{web_config.ui_path}/instances/{instance.id}", status_code=303)
    context = page_context(web_config, current_user, **_start_context(definition, values, errors))
    return Template(template_name="flowstar/start.html", context=context, status_code=422)


async def _instance_page(
    engine: Engine,
    instance: WorkflowInstance,
    user: User | None,
    config: WebConfig,
    *,
    status: int = 200,
    notice: str = "",
    posted: FormValues | None = None,
) -> Template:
    """The instance page; ``notice`` is a refusal to show, ``posted`` the action fields to show again."""
    definition = engine.registry.get_definition(instance.workflow_name, instance.workflow_version)
    admin = may_administer(user)
    shown = posted or {}
    context = page_context(
        config,
        user,
        instance=instance,
        data_json=json.dumps(instance.data, indent=2, sort_keys=True),
        history=await engine.get_history(instance.id),
        diagram=render_mermaid(definition, instance.current_step),
        can_cancel=admin and instance.status not in TERMINAL_WORKFLOW_STATUSES,
        can_retry=admin and instance.status is WorkflowStatus.FAILED,
        steps=list(definition.steps),
        retry_step=(shown.get("from_step") or [instance.failed_step or definition.initial_step])[0],
        reason=(shown.get("reason") or [""])[0],
        notice=notice,
    )
    return Template(template_name="flowstar/instance.html", context=context, status_code=status)


_DENIED = {404: "No such instance.", 403: "This instance is not yours."}


async def _instance_or_answer(
    instance_id: str, engine: Engine, user: User | None, config: WebConfig
) -> WorkflowInstance | Template | Redirect:
    """The URL's instance if the user may see it, else the page to answer with (sign-in, 403, 404)."""
    redirect = sign_in_needed(config, user)
    if redirect:
        return redirect
    found = await visible_instance(engine, instance_id, user)
    if isinstance(found, int):
        return message(config, user, found, _DENIED[found])
    return found


@get("/instances/{instance_id:str}", name="flowstar-ui:instance")
async def instance_page(
    instance_id: FromPath[str], engine: EngineDep, current_user: CurrentUser, web_config: WebConfigDep
) -> Template | Redirect:
    """Status, data, the step timeline, the diagram with the current step highlighted, admin actions."""
    found = await _instance_or_answer(instance_id, engine, current_user, web_config)
    if not isinstance(found, WorkflowInstance):
        return found
    return await _instance_page(engine, found, current_user, web_config)


def cancel_reason(posted: FormValues) -> str:
    """The posted ``reason``, stripped: a cancellation needs one (it is kept as the instance's error).

    Raises:
        ValidationError: none given, or longer than ``REASON_LIMIT``.
    """
    reason = (posted.get("reason") or [""])[0].strip()
    if not reason:
        raise ValidationError("a cancellation needs a reason")
    if len(reason) > REASON_LIMIT:
        raise ValidationError(f"the reason is longer than {REASON_LIMIT} characters")
    return reason


async def _cancel(engine: Engine, instance: WorkflowInstance, user: User | None, posted: FormValues) -> None:
    reason = cancel_reason(posted)
    canceled_by = None if user is not None else ANONYMOUS
    await engine.cancel_workflow(instance.id, reason, canceled_by, user=user)


async def _retry(engine: Engine, instance: WorkflowInstance, user: User | None, posted: FormValues) -> None:
    step = (posted.get("from_step") or [""])[0].strip() or None
    definition = engine.registry.get_definition(instance.workflow_name, instance.workflow_version)
    if step is not None and step not in definition.steps:
        raise ValidationError(f"workflow {instance.workflow_name!r} has no step {step!r}")
    await engine.retry(instance.id, step, user=user)


_ACTIONS: Mapping[str, Callable[[Engine, WorkflowInstance, User | None, FormValues], Awaitable[None]]] = {
    "cancel": _cancel,
    "retry": _retry,
}
"""The instance page's admin actions by the name in their URL (``POST /instances/{id}/{name}``)."""


@post("/instances/{instance_id:str}/{action:str}", name="flowstar-ui:instance-action", status_code=303)
async def instance_action(
    request: Request[Any, Any, Any],
    *,
    instance_id: FromPath[str],
    action: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Cancel the instance with a reason, or retry it from a step (admins), then 303 back to its page.

    The engine decides who may: a refusal (no admin, a completed instance) is shown on the
    instance page with its 403, 409 or 422.
    """
    found = await _instance_or_answer(instance_id, engine, current_user, web_config)
    if not isinstance(found, WorkflowInstance):
        return found
    run = _ACTIONS.get(action)
    if run is None:
        return message(web_config, current_user, 404, "No such action.")
    posted = posted_fields(await request.form())
    try:
        await run(engine, found, current_user, posted)
    except WorkflowsError as exc:
        return await _refused(engine, found, current_user, web_config, exc, posted=posted)
    return Redirect(path=f"{web_config.ui_path}/instances/{found.id}", status_code=303)


async def _refused(
    engine: Engine,
    instance: WorkflowInstance,
    user: User | None,
    config: WebConfig,
    exc: WorkflowsError,
    *,
    posted: FormValues,
) -> Template:
    """The engine's refusal on the instance page as it is now (or alone, if it is gone for the user)."""
    status = error_status(exc)
    current = await visible_instance(engine, str(instance.id), user)
    if isinstance(current, int):
        return message(config, user, status, str(exc))
    return await _instance_page(engine, current, user, config, status=status, notice=str(exc), posted=posted)


INSTANCE_ROUTES = [start_list, start_page, start, instance_list, instance_page, instance_action]
