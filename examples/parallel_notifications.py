"""Parallel notifications: e-mail, Slack and SMS go out at the same time, then ``complete`` runs.

``start`` has three unconditional edges, so the three notification steps run concurrently;
``complete`` has three incoming edges, so it is a join: it runs once, after all three, and
sees every branch's context writes.

Run it: ``python examples/parallel_notifications.py``.
"""

from __future__ import annotations

import asyncio
import time

from flowstar import (
    BaseMachineStep,
    Edge,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowRegistry,
)

CHANNELS = ("email", "slack", "sms")


class FakeGateway:
    """Stands in for the real providers: each send takes a while; it counts overlapping sends."""

    def __init__(self, latency: float = 0.1) -> None:
        self.latency = latency
        self.in_flight = 0
        self.peak = 0
        self.sent: list[tuple[str, str]] = []

    async def send(self, channel: str, recipient: str, text: str) -> str:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        self.sent.append((channel, recipient))
        return f"{channel}-{len(self.sent)}"


class StartStep(BaseMachineStep):
    name = "start"
    description = "Prepare the message"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("message", f"Order {context.get('order_id')} has shipped")


class Notify(BaseMachineStep):
    """Send the message on one channel; each channel writes its own result key."""

    def __init__(self, channel: str, gateway: FakeGateway) -> None:
        super().__init__(name=f"notify_{channel}", description=f"Notify by {channel}")
        self.channel = channel
        self.gateway = gateway

    async def execute(self, context: WorkflowContext) -> dict[str, str]:
        recipient = context.get("contacts", {}).get(self.channel, "unknown")
        message_id = await self.gateway.send(self.channel, recipient, context.get("message"))
        result = {"channel": self.channel, "recipient": recipient, "message_id": message_id}
        context.set(f"{self.channel}_result", result)
        return result


class CompleteStep(BaseMachineStep):
    name = "complete"
    description = "Record which notifications went out"

    def __init__(self, gateway: FakeGateway) -> None:
        super().__init__()
        self.gateway = gateway

    async def execute(self, context: WorkflowContext) -> None:
        results = [context.get(f"{channel}_result") for channel in CHANNELS]
        context.set("notified", [r["channel"] for r in results if r])
        context.set("all_sent", all(results))
        context.set("peak_concurrency", self.gateway.peak)


def build_definition(gateway: FakeGateway) -> WorkflowDefinition:
    """start -> notify_email / notify_slack / notify_sms (in parallel) -> complete."""
    notifiers = [Notify(channel, gateway) for channel in CHANNELS]
    return WorkflowDefinition(
        name="parallel_notifications",
        version="1.0.0",
        description="Notify a customer on every channel at once",
        steps={
            "start": StartStep(),
            **{step.name: step for step in notifiers},
            "complete": CompleteStep(gateway),
        },
        edges=[
            *(Edge("start", step.name) for step in notifiers),
            *(Edge(step.name, "complete") for step in notifiers),
        ],
        initial_step="start",
        terminal_steps={"complete"},
    )


async def main(latency: float = 0.1) -> WorkflowInstance:
    """Run one instance and return it, finished."""
    gateway = FakeGateway(latency)
    registry = WorkflowRegistry()
    registry.register_definition(build_definition(gateway))
    engine = LocalExecutionEngine(registry)
    try:
        began = time.perf_counter()
        instance = await engine.start_workflow(
            "parallel_notifications",
            {
                "order_id": "A-1001",
                "contacts": {"email": "ann@example.com", "slack": "@ann", "sms": "+15550100"},
            },
        )
        elapsed = time.perf_counter() - began
        print(f"{instance.status.value} in {elapsed:.2f}s (each send takes {latency:.2f}s)")
        print(f"notified: {', '.join(instance.context.get('notified'))}")
        print(f"sends in flight at once: {instance.context.get('peak_concurrency')}")
        return instance
    finally:
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
