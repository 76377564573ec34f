"""A small Litestar app serving flowstar's REST API at ``/api/workflows``.

Run: ``uvicorn examples.web_app:app``.  The engine keeps its state in memory and runs the
sample workflows (``flowstar.demo_workflows``); pass ``settings=`` or ``engine=`` to the plugin
for a database.
"""

from __future__ import annotations

from litestar import Litestar

from flowstar import LocalExecutionEngine
from flowstar.demo_workflows import registry
from flowstar.web import WorkflowWebPlugin

__all__ = ["app", "engine"]

engine = LocalExecutionEngine(registry)
app = Litestar(plugins=[WorkflowWebPlugin(path_prefix="/api/workflows", engine=engine, enable_ui=False)])
