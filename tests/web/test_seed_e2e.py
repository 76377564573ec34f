# mypy: allow-untyped-defs
"""The end-to-end test of the integration-patterns document, as written there."""

import pytest
from examples.web_app import app
from litestar.testing import AsyncTestClient


@pytest.fixture
def client():
    return AsyncTestClient(app)


@pytest.mark.asyncio
async def test_start_workflow_api(client):
    """Test starting workflow via API."""
    response = await client.post(
        "/api/workflows/instances",
        json={
            "definition_name": "expense_approval",
            "input_data": {
                "amount": 500,
                "requester": "test@example.com",
            },
        },
    )

    assert response.status_code == 200
    data = response.json()
    assert "id" in data
    assert data["definition_name"] == "expense_approval"


@pytest.mark.asyncio
async def test_complete_task_api(client):
    """Test completing task via API."""
    # First start a workflow that creates a task
    start_response = await client.post(
        "/api/workflows/instances",
        json={
            "definition_name": "expense_approval",
            "input_data": {"amount": 5000, "requester": "test@example.com"},
        },
    )
    instance_id = start_response.json()["id"]

    # Get pending tasks
    tasks_response = await client.get("/api/workflows/tasks?status=pending")
    tasks = tasks_response.json()
    task = next(t for t in tasks if t["instance_id"] == instance_id)

    # Complete the task
    complete_response = await client.post(
        f"/api/workflows/tasks/{task['id']}/complete",
        json={
            "output_data": {"decision": "approve"},
            "completed_by": "manager@example.com",
        },
    )

    assert complete_response.status_code == 200
