"""docs/tracing.md: a tracer provider per process, a worker module that sets it up, the app's request spans."""

from __future__ import annotations

from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryPlugin

# --8<-- [start:provider]
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowstar import LocalExecutionEngine, WorkflowRegistry


def tracer_provider(service: str, exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(service: str) -> None:
    # pip install opentelemetry-exporter-otlp; it reads OTEL_EXPORTER_OTLP_ENDPOINT
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    trace.set_tracer_provider(tracer_provider(service, OTLPSpanExporter()))


# --8<-- [end:provider]


# --8<-- [start:worker]
# myapp/worker.py  (run: saq myapp.worker.settings --workers 4)
from flowstar.saq.worker import build_settings


def settings() -> dict[str, Any]:
    configure_tracing("orders-worker")  # in each worker process, before its engine runs steps
    return build_settings()


# --8<-- [end:worker]


engine = LocalExecutionEngine(WorkflowRegistry())

# --8<-- [start:app]
from litestar import Litestar

from flowstar.web import WorkflowWebPlugin
from flowstar.web.tracing import tracing_plugin

app = Litestar(plugins=[WorkflowWebPlugin(path_prefix="/workflows", engine=engine), tracing_plugin()])
# --8<-- [end:app]


async def main() -> None:
    # The provider's spans reach the exporter (here one in memory; the global provider of
    # this process is left alone).
    exporter = InMemorySpanExporter()
    provider = tracer_provider("orders-web", exporter)
    with provider.get_tracer("check").start_as_current_span("a request"):
        pass
    provider.force_flush()
    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "orders-web"
    assert callable(settings)  # what ``saq myapp.worker.settings`` calls in each worker
    assert any(isinstance(p, OpenTelemetryPlugin) for p in app.plugins)
    await engine.close()
