"""The HTML task inbox: server-rendered pages (Jinja, htmx), forms from JSON Schema, assets.

``ui_router(config)`` is mounted by ``WorkflowWebPlugin`` at ``config.ui_path``;
``template_config()`` is the app's template configuration when it has none. Every script
the pages use (htmx, its SSE extension, Mermaid) is served from ``{ui_prefix}/static``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from flowstar.web.errors import error_response

if TYPE_CHECKING:
    from flowstar.web.config import WebConfig
    from flowstar.web.schemas import ErrorBody

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "template_config", "ui_router"]

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
TEMPLATE_DIR = _HERE / "templates"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja with the inbox's templates (autoescaped; they live under ``flowstar/``)."""
    return TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine)


def ui_router(config: WebConfig) -> Router:
    """The inbox pages and their static files, at ``config.ui_path``."""
    from flowstar.web.ui.bulk import BULK_ROUTES
    from flowstar.web.ui.instances import INSTANCE_ROUTES
    from flowstar.web.ui.routes import ROUTES

    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        name="flowstar-ui:static",
        # Litestar's own 404 names the directory it looked in (the install path), and a NUL
        # byte in the path fails the file system call: both are just "no such file" here.
        exception_handlers={NotFoundException: _no_such_file, ValueError: _no_such_file},
    )
    return Router(path=config.ui_path or "/", route_handlers=[*ROUTES, *INSTANCE_ROUTES, *BULK_ROUTES, static])


def _no_such_file(_: Request[Any, Any, Any], __: Exception) -> Response[ErrorBody]:
    return error_response(404, "no such file")
