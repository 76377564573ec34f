"""Pages to start a workflow and to follow an instance (status, data, steps, diagram)."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.errors import ValidationError, WorkflowsError
from flowstar.model.mermaid import render_mermaid
from flowstar.web.config import WebConfig
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.ui.forms import form_context, read_post
from flowstar.web.ui.routes import message, page_context, sign_in_needed
from flowstar.web.ui.task_access import visible_instance

__all__ = ["INSTANCE_ROUTES"]


def _input_schema(definition: Any) -> dict[str, Any] | None:
    # WorkflowDefinition has no input schema yet: a definition that carries one (as an
    # attribute) gets a generated form, every other one a JSON textarea.
    schema = getattr(definition, "input_schema", None)
    return dict(schema) if isinstance(schema, dict) else None


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
    definition: Any, values: dict[str, list[str]] | None, errors: dict[str, list[str]]
) -> dict[str, Any]:
    return {"definition": definition, **form_context(_input_schema(definition), values, errors)}


async def _definition_or_answer(name: str, engine: Engine, user: User | None, config: WebConfig) -> Any:
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
    posted = await request.form()
    values = {key: list(posted.getall(key)) for key in posted if key != "_csrf_token"}
    data, errors = read_post(_input_schema(definition), values)
    if not errors:
        try:
            instance = await engine.start_workflow(
                name,
                data,
                tenant_id=current_user.tenant_id if current_user else None,
                created_by=current_user.id if current_user else None,
            )
        except ValidationError as exc:
            errors = {"": [str(exc)]}
        else:
            return Redirect(path=f"{web_config.ui_path}/instances/{instance.id}", status_code=303)
    context = page_context(web_config, current_user, **_start_context(definition, values, errors))
    return Template(template_name="flowstar/start.html", context=context, status_code=422)


@get("/instances/{instance_id:str}", name="flowstar-ui:instance")
async def instance_page(
    request: Request[Any, Any, Any],
    instance_id: FromPath[str],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
) -> Template | Redirect:
    """Status, data, the step timeline and the diagram with the current step highlighted."""
    redirect = sign_in_needed(web_config, current_user)
    if redirect:
        return redirect
    found = await visible_instance(engine, instance_id, current_user)
    if isinstance(found, int):
        return message(web_config, current_user, found, {404: "No such instance."}.get(found, "Not yours."))
    definition = engine.registry.get_definition(found.workflow_name, found.workflow_version)
    context = page_context(
        web_config,
        current_user,
        instance=found,
        data_json=json.dumps(found.data, indent=2, sort_keys=True),
        history=await engine.get_history(found.id),
        diagram=render_mermaid(definition, found.current_step),
    )
    return Template(template_name="flowstar/instance.html", context=context)


INSTANCE_ROUTES = [start_list, start_page, start, instance_page]
