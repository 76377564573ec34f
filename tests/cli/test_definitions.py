"""``flowstar definitions``: registered versions and the instances still running each."""

from __future__ import annotations

import json

from flowstar import WorkflowRegistry
from flowstar.engine.core import Engine
from flowstar.model.waits import SignalStep
from tests.cli.conftest import Cli, started
from tests.unit.helpers import Set, linear


def test_definitions_show_running_counts_and_stranded_versions(cli: Cli) -> None:
    # An instance of approval 0.9.0, a version FLOWSTAR_REGISTRY no longer has.
    old = WorkflowRegistry()
    old.register_definition(linear("approval", SignalStep("approved"), Set("done"), version="0.9.0"))

    async def start_old(engine: Engine) -> None:
        await engine.start_workflow("approval")

    cli.with_engine(start_old, registry=old)
    started(cli, "approval")
    started(cli, "approval")

    rows = json.loads(cli.ok("definitions", "--json").stdout)
    by_key = {(r["name"], r["version"]): r for r in rows}
    assert [(r["name"], r["version"]) for r in rows] == [
        ("approval", "0.9.0"),
        ("approval", "1.0.0"),
        ("article", "1.0.0"),
        ("delivery", "1.0.0"),
        ("order", "1.0.0"),
    ]
    assert by_key["approval", "0.9.0"] == {
        "name": "approval",
        "version": "0.9.0",
        "registered": False,
        "active": False,
        "running": 1,
    }
    assert by_key["approval", "1.0.0"] == {
        "name": "approval",
        "version": "1.0.0",
        "registered": True,
        "active": True,
        "running": 2,
    }
    assert by_key["order", "1.0.0"]["running"] == 0

    table = cli.ok("definitions").stdout
    assert "definition versions" in table
    [stranded] = [line for line in table.splitlines() if "0.9.0" in line]
    assert stranded.split("│")[1:-1] == [" approval ", " 0.9.0   ", " no         ", " no     ", " 1       "]
