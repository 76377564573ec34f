"""SAQ's own queue viewer, mounted under ``{prefix}/admin/queues`` behind the admin guard.

flowstar does not write a queue viewer: SAQ ships one (``saq.web.starlette``), and this
mounts it for the SAQ queue the plugin's engine dispatches to.  An engine that runs steps in
its own process has no queue: the mount answers 404 then.

The viewer's retry and abort buttons post without a CSRF token, so with a session sign-in
Litestar's CSRF protection refuses them: the viewer is for looking.  Retrying work goes
through the engine (``POST /instances/{id}/retry``, bulk operations, ``flowstar bulk``),
which knows what a retry means for the instance.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Router, asgi
from litestar.exceptions import NotFoundException
from litestar.types import Receive, Scope, Send

from flowstar.engine.core import Engine
from flowstar.web.auth import require_admin, require_user
from flowstar.web.config import WebConfig

__all__ = ["QUEUES_PATH", "queue_router"]

QUEUES_PATH = "/admin/queues"


def queue_router(config: WebConfig, engine: Callable[[], Awaitable[Engine]]) -> Router:
    """The mount of SAQ's viewer for the engine ``engine()`` returns, under ``config``'s prefix."""
    root = f"{config.path_prefix.rstrip('/')}{QUEUES_PATH}"
    viewer: list[Any] = []  # built on the first request, when the engine (and its queue) exists

    async def app_for_queue() -> Any:
        if not viewer:
            queue = getattr(getattr(await engine(), "saq_dispatcher", None), "queue", None)
            if queue is None:
                viewer.append(None)
            else:
                from saq.web.starlette import saq_web

                viewer.append(saq_web(root, queues=[queue]))
        return viewer[0]

    @asgi(QUEUES_PATH, is_mount=True, copy_scope=True)
    async def queues(scope: Scope, receive: Receive, send: Send) -> None:
        app = await app_for_queue()
        if app is None:
            raise NotFoundException("no SAQ queue: this engine runs steps in its own process")
        # Litestar hands a mount its sub-path with a slash added ("/api/queues/"), and the
        # viewer's routes have none: Starlette would redirect out of the mount.
        scope["path"] = scope["path"].rstrip("/") or "/"
        await app(scope, receive, send)

    guards: list[Any] = [require_user, config.admin_guard or require_admin]
    if config.auth_guard is not None:
        guards.insert(1, config.auth_guard)
    return Router(path=config.path_prefix or "/", route_handlers=[queues], guards=guards, include_in_schema=False)
