"""``flowstar demo``, ``flowstar serve`` and ``flowstar worker``, on real Redis.

The worker test is the distributed case of the operator commands: with
``FLOWSTAR_REDIS_URL`` set, ``flowstar signal`` commits the wake-up and enqueues the next
step without running it, and a ``flowstar worker`` process runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from flowstar import WorkflowStatus
from flowstar.engine.core import Engine
from tests.cli.conftest import REGISTRY, Cli, started
from tests.cli.test_app import FLOWSTAR, ROOT
from tests.integration.saq_support import READY, REDIS_DB, SaqEnv, WorkerProcess, wait_for


@pytest.fixture
def saq_env(redis_server_url: str, unique_prefix: str, db_url: str) -> Iterator[SaqEnv]:
    """A queue of the test's own on Redis (its keys deleted afterwards), on the test's database.

    Only its names and ``worker_env`` are used: the commands and workers make their own
    connections, in their own event loops.
    """
    env = SaqEnv(
        database_url=db_url, redis_url=f"{redis_server_url}/{REDIS_DB}", queue=unique_prefix, db=None, redis=None
    )
    yield env
    asyncio.run(_forget(env))


async def _forget(env: SaqEnv) -> None:
    """Delete the queue's keys (``SaqEnv.delete_redis_keys`` on a client of this loop)."""
    env.redis = Redis.from_url(env.redis_url)
    try:
        await env.delete_redis_keys()
    finally:
        await env.redis.aclose()


@contextlib.asynccontextmanager
async def _queue(env: SaqEnv) -> AsyncIterator[RedisQueue]:
    """The test's SAQ queue, connected for the duration of the block."""
    queue = RedisQueue(Redis.from_url(env.redis_url), name=env.queue)
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


def _process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([FLOWSTAR, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _answers(url: str) -> bool:
    """Whether a server answers ``url`` with 200 yet."""
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            return (await client.get(url)).status_code == 200
        except httpx.TransportError:
            return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_demo_once_runs_the_expense_reports(cli: Cli, saq_env: SaqEnv) -> None:
    result = cli.ok("demo", "--once", FLOWSTAR_REDIS_URL=saq_env.redis_url, FLOWSTAR_QUEUE=saq_env.queue)
    lines = result.stdout.splitlines()
    assert lines[0] == f"flowstar demo: database {cli.url}, redis {saq_env.redis_url}"
    assert "  -> completed, approved_by=system" in lines
    assert "  -> completed, status=approved" in lines
    assert any(line.startswith("  history: submit_expense:succeeded") for line in lines)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_serves_the_inbox_until_interrupted(cli: Cli, saq_env: SaqEnv, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        **saq_env.worker_env(registry="flowstar.demo_workflows:registry"),
        "FLOWSTAR_DATABASE_URL": cli.url,
    }
    log = tmp_path / "serve.log"
    server = _process(["serve", "--port", str(port)], env, log)
    try:

        async def up() -> bool:
            if server.poll() is not None:
                raise AssertionError(log.read_text())
            # The line comes before the port is bound: wait for an answer too.
            return "Inbox: http://" in log.read_text() and await _answers(f"http://127.0.0.1:{port}/workflows/ui/login")

        asyncio.run(wait_for(up, within=30, what="the server"))
        login = httpx.get(f"http://127.0.0.1:{port}/workflows/ui/login", timeout=10)
        assert login.status_code == 200
        assert "Sign in" in login.text
        # The plugin on FLOWSTAR_* settings: its API needs a sign-in, and knows the registry's workflows.
        assert httpx.get(f"http://127.0.0.1:{port}/workflows/definitions", timeout=10).status_code == 401
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0
    finally:
        server.kill()
        server.wait()
    assert f"Inbox: http://127.0.0.1:{port}/workflows/ui/" in log.read_text()


@pytest.mark.integration
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_signal_is_handed_to_a_worker_that_runs_it(cli: Cli, saq_env: SaqEnv, tmp_path: Path) -> None:
    instance_id = await asyncio.to_thread(started, cli, "approval")
    saq = {"FLOWSTAR_REDIS_URL": saq_env.redis_url, "FLOWSTAR_QUEUE": saq_env.queue}

    result = await asyncio.to_thread(cli.ok, "signal", "approved", "--instance", instance_id, "--json", **saq)
    assert json.loads(result.stdout)["handed_to_workers"] is True
    # Committed and enqueued, not run: the step after the wait is the workers' job.
    status, steps = await asyncio.to_thread(_status_and_steps, cli, instance_id)
    assert (status, steps) == (WorkflowStatus.RUNNING, ["ask", "approved"])
    async with _queue(saq_env) as queue:
        assert await queue.count("queued") == 1

    log = tmp_path / "worker.log"
    worker = WorkerProcess(
        "cli", _process(["worker"], saq_env.worker_env(registry=REGISTRY, database_url=cli.url), log), log
    )
    try:
        await worker.ready()

        async def finished() -> bool:
            state, _ = await asyncio.to_thread(_status_and_steps, cli, instance_id)
            return state is WorkflowStatus.COMPLETED

        await wait_for(finished, within=30, interval=0.2, what="the worker to finish the instance")
        worker.terminate()
        assert await worker.exited(within=15) == 0
    finally:
        worker.kill()
    assert READY in worker.output()
    assert (await asyncio.to_thread(_status_and_steps, cli, instance_id))[1] == ["ask", "approved", "done"]


def _status_and_steps(cli: Cli, instance_id: str) -> tuple[WorkflowStatus, list[str]]:
    async def read(engine: Engine) -> tuple[WorkflowStatus, list[str]]:
        instance = await engine.get_instance(instance_id)
        return instance.status, [r.step_name for r in await engine.get_history(instance_id)]

    return cli.with_engine(read)


def test_serve_app_serves_the_named_application(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    server = _process(["serve", "--app", "tests.cli.served_app:app", "--port", str(port)], dict(os.environ), log)
    try:

        async def up() -> bool:
            if server.poll() is not None:
                raise AssertionError(log.read_text())
            return await _answers(f"http://127.0.0.1:{port}/hello")

        asyncio.run(wait_for(up, within=30, what="the server"))
        assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=10).json() == {"hello": "from the host app"}
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 0
    finally:
        server.kill()
        server.wait()
    assert "Sign-in: the demo's sample users" not in log.read_text()
