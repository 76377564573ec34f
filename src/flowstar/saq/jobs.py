"""The SAQ job function that runs activations inside worker processes."""

from __future__ import annotations

from typing import Any

__all__ = ["ENGINE_KEY", "run_activation"]

ENGINE_KEY = "flowstar"


async def run_activation(ctx: dict[str, Any], *, instance_id: str, token_id: str) -> str:
    """Run one activation with the worker's ``SAQExecutionEngine`` (``ctx["flowstar"]``)."""
    engine = ctx[ENGINE_KEY]
    result: str = await engine.execute_job(ctx.get("job"), instance_id, token_id)
    return result
