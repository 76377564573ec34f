"""``flowstar signal`` and ``flowstar event`` wake waiting instances (checked in the database)."""

from __future__ import annotations

import json
from typing import Any

from flowstar import WorkflowStatus
from flowstar.engine.core import Engine
from tests.cli.conftest import Cli, error_line, started


def _status_and_data(cli: Cli, instance_id: str) -> tuple[WorkflowStatus, dict[str, Any]]:
    async def read(engine: Engine) -> tuple[WorkflowStatus, dict[str, Any]]:
        instance = await engine.get_instance(instance_id)
        return instance.status, instance.data

    return cli.with_engine(read)


def test_a_signal_for_one_instance_wakes_it_with_its_payload(cli: Cli) -> None:
    target = started(cli, "approval")
    other = started(cli, "approval")
    out = cli.ok("signal", "approved", "--instance", target, "--payload", '{"by": "carol"}').stdout
    assert out.strip() == f"signal 'approved' for instance {target} woke 1 instance(s)"
    status, data = _status_and_data(cli, target)
    assert status is WorkflowStatus.COMPLETED
    assert data["by"] == "carol"
    assert data["finished"] is True
    assert _status_and_data(cli, other)[0] is WorkflowStatus.WAITING


def test_a_signal_without_an_instance_wakes_every_waiting_one(cli: Cli) -> None:
    ids = [started(cli, "approval"), started(cli, "approval")]
    result = json.loads(cli.ok("signal", "approved", "--json").stdout)
    assert result == {"signal": "approved", "instance_id": None, "woken": 2, "handed_to_workers": False}
    assert [_status_and_data(cli, i)[0] for i in ids] == [WorkflowStatus.COMPLETED, WorkflowStatus.COMPLETED]
    # Another tenant's instances are not woken by a signal to instances without a tenant.
    assert json.loads(cli.ok("signal", "approved", "--tenant", "acme", "--json").stdout)["woken"] == 0


def test_a_bad_payload_is_refused_and_changes_nothing(cli: Cli) -> None:
    instance_id = started(cli, "approval")
    line = error_line(cli("signal", "approved", "--instance", instance_id, "--payload", '{"by": '))
    assert line.startswith("flowstar: --payload is not valid JSON: ")
    line = error_line(cli("signal", "approved", "--payload", "[1, 2]"))
    assert line == "flowstar: --payload must be a JSON object, not list: [1, 2]"
    assert _status_and_data(cli, instance_id)[0] is WorkflowStatus.WAITING


def test_a_signal_for_an_unknown_instance_fails(cli: Cli) -> None:
    line = error_line(cli("signal", "approved", "--instance", "00000000-0000-0000-0000-000000000000"))
    assert line == "flowstar: no workflow instance with id '00000000-0000-0000-0000-000000000000'"


def test_an_event_wakes_the_instance_waiting_for_it(cli: Cli) -> None:
    instance_id = started(cli, "delivery")
    result = json.loads(
        cli.ok(
            "event",
            "parcel_delivered",
            "P-17",
            "--at",
            "2026-05-01T09:30:00Z",
            "--payload",
            '{"signed_by": "bob"}',
            "--json",
        ).stdout
    )
    assert set(result) == {"event", "entity_id", "event_id", "at", "handed_to_workers"}
    assert (result["event"], result["entity_id"], result["at"]) == ("parcel_delivered", "P-17", "2026-05-01T09:30:00Z")
    status, data = _status_and_data(cli, instance_id)
    assert status is WorkflowStatus.COMPLETED
    assert (data["signed_by"], data["entity_id"], data["event_id"]) == ("bob", "P-17", result["event_id"])
    out = cli.ok("event", "parcel_delivered", "P-18").stdout
    assert out.startswith("event 'parcel_delivered' about P-18 reported as ")


def test_an_event_time_needs_a_time_zone(cli: Cli) -> None:
    instance_id = started(cli, "delivery")
    line = error_line(cli("event", "parcel_delivered", "P-1", "--at", "2026-05-01T09:30:00"))
    assert line == "flowstar: --at '2026-05-01T09:30:00' needs a time zone (add +00:00 or Z)"
    line = error_line(cli("event", "parcel_delivered", "P-1", "--at", "yesterday"))
    assert line == "flowstar: --at 'yesterday' is not an ISO 8601 time (2026-05-01T09:00:00+00:00)"
    assert _status_and_data(cli, instance_id)[0] is WorkflowStatus.WAITING
