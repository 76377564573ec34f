"""A real server (uvicorn on a free port, in the test's event loop) and Debian's Chromium.

The server runs as a task of the test's own loop, so the test drives the same engine the
pages use. Without ``/usr/bin/chromium`` the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from playwright.async_api import Browser, async_playwright

from flowstar import BaseHumanStep, LocalExecutionEngine, WorkflowRegistry
from flowstar.web import UserDirectory, WorkflowWebPlugin
from tests.unit.helpers import Set, linear

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
FORM = {
    "type": "object",
    "required": ["decision", "amount"],
    "properties": {
        "decision": {"enum": ["approve", "reject"]},
        "amount": {"type": "number", "minimum": 0, "description": "Approved amount in euros"},
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (select with -m browser)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveApp:
    url: str
    engine: LocalExecutionEngine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def live_app() -> AsyncIterator[LiveApp]:
    registry = WorkflowRegistry()
    approve = BaseHumanStep("approve", title="Approve expense", assignee_key="who", form_schema=FORM)
    registry.register_definition(linear("expense", approve, Set("done")))
    engine = LocalExecutionEngine(registry)
    plugin = WorkflowWebPlugin(engine=engine, user_directory=UserDirectory.demo(), secret_key="b" * 32)
    port = _free_port()
    config = uvicorn.Config(Litestar(plugins=[plugin]), port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        # uvicorn offers only this flag (no event) to say it listens.
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    yield LiveApp(url=f"http://127.0.0.1:{port}", engine=engine)
    server.should_exit = True
    await task
    await engine.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        await chromium.close()
