"""What a failing step leaves in the context: its last attempt's writes, never a retried one's."""

from __future__ import annotations

from typing import Any

from flowstar import RetryPolicy, WorkflowContext, WorkflowStatus
from tests.unit.helpers import Fn, Set, linear


async def test_only_the_final_attempts_writes_survive_a_failure(make_engine: Any) -> None:
    attempts: list[int] = []

    def call(context: WorkflowContext) -> None:
        attempts.append(len(attempts) + 1)
        context.set(f"attempt_{len(attempts)}", True)
        context.set("fetch_with_retry_final_error", f"timeout on attempt {len(attempts)}")
        raise TimeoutError("upstream timed out")

    step = Fn("fetch_with_retry", call, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0))
    engine = make_engine(linear("fetch", Set("start", s=1), step, Set("end")))
    instance = await engine.start_workflow("fetch")
    assert instance.status is WorkflowStatus.FAILED
    assert attempts == [1, 2, 3]
    assert instance.data == {
        "s": 1,
        "attempt_3": True,
        "fetch_with_retry_final_error": "timeout on attempt 3",
    }
    stored = await engine.get_instance(instance.id)
    assert stored.data == instance.data


async def test_a_retried_failure_starts_its_next_attempt_without_the_writes(make_engine: Any) -> None:
    seen: list[dict[str, Any]] = []

    def flaky(context: WorkflowContext) -> None:
        seen.append(dict(context.data))
        context.set("half_done", True)
        if len(seen) == 1:
            raise ConnectionError("reset")

    step = Fn("flaky", flaky, retry_policy=RetryPolicy(max_attempts=2, initial_delay=0))
    engine = make_engine(linear("retried", step))
    instance = await engine.start_workflow("retried", {"n": 1})
    assert instance.status is WorkflowStatus.COMPLETED
    assert seen == [{"n": 1}, {"n": 1}]
    assert instance.data == {"n": 1, "half_done": True}
