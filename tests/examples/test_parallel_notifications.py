"""examples/parallel_notifications.py: a fan-out to three channels and a join."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from flowstar import LocalExecutionEngine, StepStatus, WorkflowRegistry, WorkflowStatus
from tests.examples.conftest import run_example


async def test_join_sees_all_three_results(load_example: Callable[[str], ModuleType]) -> None:
    example = load_example("parallel_notifications")
    done = await example.main(latency=0.05)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.current_step == "complete"
    assert done.context.get("notified") == ["email", "slack", "sms"]
    assert done.context.get("all_sent") is True
    assert done.context.get("email_result")["recipient"] == "ann@example.com"
    assert done.context.get("slack_result")["recipient"] == "@ann"
    assert done.context.get("sms_result")["recipient"] == "+15550100"
    assert done.context.get("message") == "Order A-1001 has shipped"
    # All three sends were in flight together: the branches ran concurrently.
    assert done.context.get("peak_concurrency") == 3


async def test_complete_runs_once_after_every_branch(load_example: Callable[[str], ModuleType]) -> None:
    example = load_example("parallel_notifications")
    gateway = example.FakeGateway(latency=0.01)
    registry = WorkflowRegistry()
    registry.register_definition(example.build_definition(gateway))
    engine = LocalExecutionEngine(registry)
    try:
        instance = await engine.start_workflow("parallel_notifications", {"order_id": "B-2", "contacts": {}})
        assert instance.status is WorkflowStatus.COMPLETED
        history = await engine.get_history(instance.id)
        names = [r.step_name for r in history]
        assert names.count("complete") == 1
        assert names[0] == "start"
        assert names[-1] == "complete"
        assert sorted(names[1:4]) == ["notify_email", "notify_slack", "notify_sms"]
        assert all(r.status is StepStatus.SUCCEEDED for r in history)
        assert sorted(channel for channel, _ in gateway.sent) == ["email", "slack", "sms"]
        assert instance.context.get("email_result")["recipient"] == "unknown"
    finally:
        await engine.close()


def test_runs_as_a_script() -> None:
    result = run_example("parallel_notifications")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("completed in ")
    assert "notified: email, slack, sms" in result.stdout
    assert "sends in flight at once: 3" in result.stdout
