"""``WorkflowWebPlugin``: flowstar's REST API, SSE feed, webhooks and UI in any Litestar app."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.plugins import InitPlugin

from flowstar.engine.core import Engine
from flowstar.metrics import FlowstarMetrics
from flowstar.metrics.parts import core_engine
from flowstar.model.access import User
from flowstar.web.auth import SessionUserProvider, current_user_of
from flowstar.web.config import WebConfig
from flowstar.web.health import MonitoringConfig, monitoring_router
from flowstar.web.runtime import EngineHolder

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

__all__ = ["WorkflowWebPlugin"]


class WorkflowWebPlugin(InitPlugin):
    """Mounts flowstar into a Litestar application.

    Every option is a ``WebConfig`` field (pass them as keywords, or ``config=``).  Handlers
    may inject ``engine`` (the flowstar engine), ``current_user`` (``User | None``) and
    ``web_config`` (the ``WebConfig``).  ``monitoring`` configures the metrics and health
    routes (``MonitoringConfig``; on by default, ``MonitoringConfig(enabled=False)`` drops
    them): the engine's commits then feed ``monitoring.metrics``.
    """

    __slots__ = ("config", "holder", "metrics", "monitoring")

    def __init__(
        self, config: WebConfig | None = None, *, monitoring: MonitoringConfig | None = None, **options: Any
    ) -> None:
        if config is not None and options:
            raise TypeError("pass either config= or keyword options, not both")
        self.config = config or WebConfig(**options)
        if self.config.user_provider is None and self.config.user_directory is not None:
            self.config.user_provider = SessionUserProvider(self.config.user_directory)
        self.holder = EngineHolder(self.config.engine, self.config.settings)
        self.monitoring = monitoring or MonitoringConfig()
        self.metrics: FlowstarMetrics | None = None
        if self.monitoring.enabled:
            self.metrics = self.monitoring.metrics = self._metrics(self.monitoring.metrics)

    def _metrics(self, given: FlowstarMetrics | None) -> FlowstarMetrics:
        """The metrics to serve: ``given``, else those the engine passed in already reports to
        (another app on the same engine), else new ones."""
        engine = core_engine(self.config.engine) if self.config.engine is not None else None
        if engine is None:
            return given or FlowstarMetrics()
        if given is None:
            return FlowstarMetrics.for_engine(engine)
        given.install(engine)
        return given

    async def engine(self) -> Engine:
        """The plugin's engine (built on first use when the plugin owns it), its commits
        counted by the plugin's metrics."""
        engine = await self.holder.get()
        if self.metrics is not None:
            self.metrics.install(core_engine(engine))
        return engine

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the plugin's dependencies, routes, middleware, handlers and lifespan."""
        from flowstar.web.errors import exception_handlers

        config = self.config
        holder = self.holder

        async def provide_engine() -> Engine:
            return await self.engine()

        async def provide_current_user(request: ASGIConnection[Any, Any, Any, Any]) -> User | None:
            return await current_user_of(request)

        def provide_web_config() -> WebConfig:
            return config

        app_config.dependencies.update(
            {
                "engine": Provide(provide_engine),
                "current_user": Provide(provide_current_user),
                "web_config": Provide(provide_web_config, use_cache=True, sync_to_thread=False),
            }
        )
        app_config.state["flowstar_web_config"] = config
        app_config.state["flowstar_engine_holder"] = holder

        @asynccontextmanager
        async def lifespan(_: Litestar) -> AsyncIterator[None]:
            try:
                yield
            finally:
                await holder.close()

        app_config.lifespan.append(lifespan)
        for error, handler in exception_handlers().items():
            app_config.exception_handlers.setdefault(error, handler)
        self._add_auth(app_config)
        if config.tracing:
            _add_tracing(app_config)
        if config.enable_api:
            from flowstar.web.api import api_router

            app_config.route_handlers.append(api_router(config))
        if config.enable_ui:
            self._add_ui(app_config)
        if config.enable_admin and importlib.util.find_spec("starlette") is not None:
            from flowstar.web.queues import queue_router

            app_config.route_handlers.append(queue_router(config, self.engine))
        if self.monitoring.enabled:
            app_config.state["flowstar_metrics"] = self.metrics
            app_config.route_handlers.append(monitoring_router(config, self.monitoring, self.engine))
        return app_config

    def _add_auth(self, app_config: AppConfig) -> None:
        config = self.config
        if isinstance(config.user_provider, SessionUserProvider):
            # Server-side sessions (the app's default store, in memory unless the app sets
            # one, e.g. a RedisStore): the cookie holds only a random session id.
            session = ServerSideSessionConfig(secure=config.session_cookie_secure, samesite="lax")
            app_config.middleware.append(session.middleware)
            if config.csrf and app_config.csrf_config is None:
                # Webhook callbacks are authenticated by their URL's token, not a cookie.
                app_config.csrf_config = CSRFConfig(
                    secret=config.secret_key,
                    cookie_name="csrftoken",
                    header_name="x-csrftoken",
                    cookie_secure=config.session_cookie_secure,
                    exclude=[f"{config.path_prefix}/webhooks/"],
                )

    def _add_ui(self, app_config: AppConfig) -> None:
        # Imported lazily: an API-only application needs neither Jinja nor the templates.
        ui: Any = importlib.import_module("flowstar.web.ui")
        app_config.route_handlers.append(ui.ui_router(self.config))
        if app_config.template_config is None:
            app_config.template_config = ui.template_config()


def _add_tracing(app_config: AppConfig) -> None:
    """Litestar's OpenTelemetry middleware, unless the app brought Litestar's plugin itself."""
    from litestar.plugins.opentelemetry import OpenTelemetryPlugin

    from flowstar.web.tracing import tracing_middleware

    if not any(isinstance(plugin, OpenTelemetryPlugin) for plugin in app_config.plugins):
        app_config.middleware.append(tracing_middleware())
