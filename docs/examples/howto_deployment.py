"""How-to (deployment): the module FLOWSTAR_REGISTRY names, and the compose file's settings.

``main()`` checks that the variables of the repository's docker-compose.yml make valid
settings and that a ``module:attribute`` reference finds this module's registry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

# --8<-- [start:registry]
# myapp/workflows.py: FLOWSTAR_REGISTRY=myapp.workflows:registry in every process
from flowstar import WorkflowRegistry

from tutorial_code_first import ExpenseReport
from tutorial_human_task import definition as expense_report

registry = WorkflowRegistry()
registry.register_definition(expense_report)  # graph definitions
registry.register_definition(ExpenseReport.definition)  # and code-first ones
# --8<-- [end:registry]

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


async def main() -> None:
    from flowstar.model.registry import load_registry
    from flowstar.settings import FlowstarSettings

    assert load_registry(f"{__name__}:registry") is registry
    assert {d.name for d in registry.list_definitions()} == {"expense_report", "expense_report_code_first"}

    compose = yaml.safe_load(COMPOSE.read_text())
    env = {k: str(v) for k, v in compose["x-flowstar-env"].items()}
    settings = FlowstarSettings.from_env(env)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert (settings.queue, settings.shutdown_grace) == ("flowstar", 30)
    worker = compose["services"]["worker"]
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    assert grace > settings.shutdown_grace  # Docker's SIGKILL comes after the worker's own grace


if __name__ == "__main__":
    asyncio.run(main())
