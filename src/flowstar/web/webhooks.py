"""Webhook callbacks: one unguessable, single-use URL per waiting webhook step.

The token is an HMAC-SHA256 (key: ``WebConfig.secret_key``) of the instance id and the id of
the waiting step's record, so it names exactly one wait; once that step has resumed, the
record is no longer waiting and the URL answers 404, as does any other token.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from flowstar.model.enums import StepStatus
from flowstar.model.errors import InvalidTransitionError, TaskNotFoundError
from flowstar.web.auth import require_user
from flowstar.web.deps import CurrentUser, EngineDep, WebConfigDep
from flowstar.web.schemas import InstanceOut, WebhookCallback, instance_out

__all__ = ["callback_token", "webhook_routes"]


def callback_token(secret: str, instance_id: FromPath[str], record_id: str) -> str:
    """The callback token of the wait ``record_id`` of ``instance_id``."""
    message = f"{instance_id}:{record_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _waiting_webhooks(history: list[Any]) -> list[Any]:
    return [r for r in history if r.step_type == "webhook" and r.status == StepStatus.WAITING]


@get(
    "/instances/{instance_id:uuid}/webhooks",
    summary="Callback URLs of an instance's waiting webhook steps",
    guards=[require_user],
)
async def list_callbacks(
    request: Request[Any, Any, Any],
    engine: EngineDep,
    current_user: CurrentUser,
    web_config: WebConfigDep,
    instance_id: FromPath[Any],
) -> list[WebhookCallback]:
    """One callback URL per waiting webhook step (admins and trusted back ends only)."""
    if current_user is not None and not current_user.is_admin:
        raise NotFoundException("no such instance")
    iid = str(instance_id)
    instance = await engine.get_instance(iid)
    if current_user is not None and instance.tenant_id != current_user.tenant_id:
        raise NotFoundException("no such instance")
    base = str(request.base_url).rstrip("/")
    prefix = f"{web_config.path_prefix}/webhooks"
    return [
        WebhookCallback(
            step_name=r.step_name,
            url=f"{base}{prefix}/{iid}/{r.id}/{callback_token(web_config.secret_key, iid, r.id)}",
        )
        for r in _waiting_webhooks(await engine.get_history(iid))
    ]


@post(
    "/webhooks/{instance_id:str}/{record_id:str}/{token:str}", summary="Resume a waiting webhook step", status_code=200
)
async def receive_webhook(
    *,
    engine: EngineDep,
    web_config: WebConfigDep,
    instance_id: FromPath[str],
    record_id: FromPath[str],
    token: FromPath[str],
    data: JSONBody[dict[str, Any] | None] = None,
) -> InstanceOut:
    """Resume exactly the wait the token names with the posted JSON object; else 404."""
    expected = callback_token(web_config.secret_key, instance_id, record_id)
    if not token.isascii() or not hmac.compare_digest(expected, token):
        raise NotFoundException("no such callback")
    waiting = [r for r in _waiting_webhooks(await engine.get_history(instance_id)) if r.id == record_id]
    if not waiting:
        raise NotFoundException("no such callback")
    try:
        instance = await engine.resume_webhook(instance_id, waiting[0].step_name, data or {})
    except (InvalidTransitionError, TaskNotFoundError):
        # Another request used the token first: single use.
        raise NotFoundException("no such callback") from None
    return InstanceOut(**instance_out(instance))


def webhook_routes() -> list[Any]:
    """The webhook handlers (the callback itself needs no user: its token is the credential)."""
    return [list_callbacks, receive_webhook]
