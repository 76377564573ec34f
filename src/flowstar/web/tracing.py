"""HTTP server spans for the Litestar app, through Litestar's own OpenTelemetry plugin.

The server span of a request is the current span while its handler runs, so the steps an
``POST /instances`` (or a completed task, a signal, a webhook) sets off are children in the
request's trace (see ``flowstar.tracing`` and docs/tracing.md).  Needs the ``otel`` extra
(``opentelemetry-instrumentation-asgi``); a host that configures no SDK ``TracerProvider``
gets the API's non-recording spans.

A host app adds it as a plugin::

    from flowstar.web.tracing import tracing_plugin

    app = Litestar(plugins=[WorkflowWebPlugin(...), tracing_plugin()])

or, from a plugin's ``on_app_init``, as a middleware (``app_config.middleware.append(
tracing_middleware())``): Litestar moves an OpenTelemetry middleware to the outside of the
app, so the span covers the whole request whatever the order of the middleware list.
"""

from __future__ import annotations

from typing import Any

from litestar.middleware.base import DefineMiddleware

try:
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
except ImportError as exc:  # Litestar raises its MissingDependencyException, an ImportError
    raise ImportError("flowstar.web.tracing needs OpenTelemetry: pip install 'flowstar[web,otel]'") from exc

__all__ = ["tracing_config", "tracing_middleware", "tracing_plugin"]


def tracing_config(**options: Any) -> OpenTelemetryConfig:
    """Litestar's ``OpenTelemetryConfig`` with flowstar's defaults; ``options`` override them.

    By default the ASGI instrumentation's per-message ``http receive``/``http send`` spans are
    left out: a request is one server span (plus whatever its handler opens), and an SSE
    event feed does not add a span per event.  Pass ``exclude_spans=None`` to keep them, or
    any other ``OpenTelemetryConfig`` field (``tracer_provider``, ``exclude``, hooks).
    """
    options.setdefault("exclude_spans", ["receive", "send"])
    return OpenTelemetryConfig(**options)


def tracing_plugin(**options: Any) -> OpenTelemetryPlugin:
    """The plugin to pass to ``Litestar(plugins=[...])`` (see ``tracing_config`` for ``options``)."""
    return OpenTelemetryPlugin(tracing_config(**options))


def tracing_middleware(**options: Any) -> DefineMiddleware:
    """The same as a middleware, for a plugin that adds it in ``on_app_init`` or a host's
    ``Litestar(middleware=[...])`` (see ``tracing_config`` for ``options``)."""
    return tracing_config(**options).middleware
