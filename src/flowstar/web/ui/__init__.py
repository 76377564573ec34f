"""The HTML task inbox: server-rendered pages (Jinja, htmx), forms from JSON Schema, assets.

``ui_router(config)`` is mounted by ``WorkflowWebPlugin`` at ``config.ui_path``;
``template_config()`` is the app's template configuration when it has none. Every script
the pages use (htmx, its SSE extension, Mermaid) is served from ``{ui_prefix}/static``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

if TYPE_CHECKING:
    from flowstar.web.config import WebConfig

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

    static = create_static_files_router(path="/static", directories=[STATIC_DIR], name="flowstar-ui:static")
    return Router(path=config.ui_path or "/", route_handlers=[*ROUTES, *INSTANCE_ROUTES, *BULK_ROUTES, static])
