"""How-to: call an external HTTP API from a step, with one shared client and safe retries."""

from __future__ import annotations

import asyncio
import json

import httpx

# --8<-- [start:step]
from flowstar import (
    BaseMachineStep,
    LocalExecutionEngine,
    RetryPolicy,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)


class CreateShipment(BaseMachineStep):
    """POST the order to the carrier's API and keep the tracking number."""

    name = "create_shipment"
    timeout = 15  # seconds: a hung call fails the attempt instead of holding the worker
    retry_policy = RetryPolicy(max_attempts=5, initial_delay=2, retry_on=(httpx.TransportError, httpx.HTTPStatusError))

    def __init__(self, client: httpx.AsyncClient) -> None:
        super().__init__()
        self.client = client  # one client (one connection pool) for every instance

    async def execute(self, context: WorkflowContext) -> None:
        order_id = context.get("order_id")
        response = await self.client.post(
            "/shipments",
            json={"order": order_id, "address": context.get("address")},
            # The step may run again after a crash or a retry: the carrier sees the same key
            # and creates one shipment, not two.
            headers={"Idempotency-Key": f"{context.get('_instance_id')}:create_shipment"},
        )
        response.raise_for_status()  # 5xx: retried by the policy above
        context.set("tracking", response.json()["tracking"])


def build_registry(client: httpx.AsyncClient) -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="ship_order",
            version="1.0.0",
            steps={"create_shipment": CreateShipment(client)},
            edges=[],
            initial_step="create_shipment",
            terminal_steps={"create_shipment"},
        )
    )
    return registry


# --8<-- [end:step]


class FakeCarrier:
    """The carrier's API for the test: one shipment per idempotency key."""

    def __init__(self) -> None:
        self.shipments: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        order = json.loads(request.content)["order"]
        tracking = self.shipments.setdefault(key, f"TRK-{order}")
        return httpx.Response(201, json={"tracking": tracking})


async def main() -> None:
    carrier = FakeCarrier()
    # --8<-- [start:run]
    # In tests, httpx.MockTransport answers for the carrier; in production, leave it out.
    transport = httpx.MockTransport(carrier)
    async with httpx.AsyncClient(base_url="https://carrier.example", transport=transport) as client:
        engine = LocalExecutionEngine(build_registry(client))
        shipped = await engine.start_workflow("ship_order", {"order_id": 42, "address": "1 Main St"})
        assert shipped.status is WorkflowStatus.COMPLETED
        assert shipped.context.get("tracking") == "TRK-42"
        await engine.close()
    # --8<-- [end:run]
    assert len(carrier.shipments) == 1


if __name__ == "__main__":
    asyncio.run(main())
