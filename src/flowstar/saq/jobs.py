"""The SAQ job function that runs activations inside worker processes.

Its kwargs are the activation (``instance_id``, ``token_id``) and, for jobs dispatched
while a trace span was current, that trace context (``trace_context``, W3C headers): the
activation then runs under it, so its step spans join the dispatching trace.  A job without
one (the reconciler's, or one enqueued by an older version) starts a trace of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowstar.tracing import job_context

__all__ = ["ENGINE_KEY", "run_activation"]

ENGINE_KEY = "flowstar"


async def run_activation(
    ctx: dict[str, Any], *, instance_id: str, token_id: str, trace_context: Mapping[str, str] | None = None
) -> str:
    """Run one activation with the worker's ``SAQExecutionEngine`` (``ctx["flowstar"]``),
    under the trace context the job carried."""
    engine = ctx[ENGINE_KEY]
    with job_context(trace_context):
        result: str = await engine.execute_job(ctx.get("job"), instance_id, token_id)
    return result
