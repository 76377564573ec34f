"""``python -m flowstar.demo`` serves the inbox with a worker: sample reports wait for Bob."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowstar.db.migrate import upgrade_async
from flowstar.demo import serve
from flowstar.saq.worker import build_settings
from flowstar.settings import FlowstarSettings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_demo_serves_the_inbox(redis_server_url: str, unique_prefix: str, tmp_path: Path) -> None:
    settings = FlowstarSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        redis_url=redis_server_url,
        queue=f"{unique_prefix}demo",
    )
    await upgrade_async(settings.database_url)
    servers: list[Any] = []
    port = _free_port()
    running = asyncio.create_task(
        serve(settings, build_settings(settings, logs=False), port=port, on_server=servers.append)
    )
    base = f"http://127.0.0.1:{port}/workflows/ui"
    try:
        async with asyncio.timeout(20):
            while not (servers and servers[0].started):  # noqa: ASYNC110 (uvicorn has only a flag)
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            login = await client.get(f"{base}/login")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text)
            assert token
            signed_in = await client.post(
                f"{base}/login", data={"username": "bob", "password": "bob", "_csrf_token": token.group(1)}
            )
            assert signed_in.status_code == 303
            # The worker opens the sample tasks while the app serves: wait until they are there.
            async with asyncio.timeout(20):
                while True:
                    inbox = await client.get(f"{base}/")
                    group = await client.get(f"{base}/", params={"tab": "group"})
                    assert (inbox.status_code, group.status_code) == (200, 200)
                    mine = re.findall(r'href="/workflows/ui/tasks/[^"]+">Approve expense<', inbox.text)
                    if len(mine) == 2 and "Review document (manager)" in group.text:
                        break  # the parallel review waits for any manager: the group's tab
                    await asyncio.sleep(0.05)
            assert (await client.get(f"{base}/static/vendor/mermaid.min.js")).status_code == 200
    finally:
        if servers:
            servers[0].should_exit = True
        await running
