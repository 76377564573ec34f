"""PostgreSQL's hot statements run on connections kept out of the engine's pool (``_leases``):
no pool checkout per statement, within the engine's budget, never reusing a connection that
failed below SQL, given back on ``store.close()`` and closed with the engine, per event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from flowstar.db import SQLAlchemyStore, create_database_engine, metadata
from flowstar.db._asyncpg import RawStatement
from flowstar.db._leases import Leases, leases_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_engine(pg_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_database_engine(pg_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


def _count_checkouts(engine: AsyncEngine) -> list[int]:
    seen = [0]

    def checkout(*_args: Any) -> None:
        seen[0] += 1

    event.listen(engine.sync_engine, "checkout", checkout)
    return seen


async def _missing(store: SQLAlchemyStore, times: int = 1) -> None:
    for _ in range(times):
        assert await store.load_instance(str(uuid.uuid4())) is None


async def _server_pid(leases: Leases) -> int:
    lease = await leases.acquire()
    try:
        return int(lease.driver.get_server_pid())
    finally:
        await leases.release(lease)


async def test_hot_statements_do_not_check_out_of_the_pool_each_time(pg_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(pg_engine, cache_states=False)
    checkouts = _count_checkouts(pg_engine)
    await _missing(store, 50)
    assert checkouts[0] == 1  # the first statement leased one connection; the others reused it
    # Concurrent statements lease at most `limit` connections; the rest borrow per statement.
    leases = leases_for(pg_engine)
    assert leases.limit == 18  # pool_size 20 minus a tenth
    await asyncio.gather(*(_missing(store, 5) for _ in range(30)))
    assert leases.kept <= leases.limit
    assert pg_engine.sync_engine.pool.checkedout() == leases.kept  # type: ignore[attr-defined]
    await store.close()


async def test_stores_on_one_engine_share_its_leases(pg_engine: AsyncEngine) -> None:
    first, second = SQLAlchemyStore(pg_engine), SQLAlchemyStore(pg_engine)
    assert first._leases is second._leases
    checkouts = _count_checkouts(pg_engine)
    await _missing(first)
    await _missing(second)
    assert checkouts[0] == 1


async def test_close_gives_the_connections_back_and_dispose_closes_them(pg_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(pg_engine)
    await asyncio.gather(*(_missing(store, 3) for _ in range(4)))
    leases = leases_for(pg_engine)
    assert leases.free >= 1
    await store.close()
    assert (leases.free, leases.kept) == (0, 0)
    assert pg_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]

    await _missing(store)
    lease = await leases.acquire()
    driver = lease.driver
    await leases.release(lease)
    await pg_engine.dispose()
    assert driver.is_closed()
    assert (leases.free, leases.kept) == (0, 0)
    await _missing(store)  # the engine's new pool lends again


async def test_a_connection_closed_by_the_server_is_not_reused(pg_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(pg_engine, cache_states=False)
    leases = leases_for(pg_engine)
    idle, busy = await leases.acquire(), await leases.acquire()
    pids = [idle.driver.get_server_pid(), busy.driver.get_server_pid()]
    await leases.release(idle)
    await leases.release(busy)  # the next statement takes this one (last in, first out)
    slow = RawStatement(text("SELECT pg_sleep(:seconds)"), pg_engine.dialect)
    running = asyncio.ensure_future(slow.fetchval(leases, {"seconds": 5}))
    await asyncio.sleep(0.2)
    async with pg_engine.connect() as conn:
        # One backend killed mid-statement, one while its connection waits in the free list.
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"), {"pids": pids}
        )
    with pytest.raises(DBAPIError):
        await running
    await asyncio.sleep(0.1)
    assert (leases.free, leases.kept) == (1, 1)
    await _missing(store)  # the idle one is found closed and replaced
    assert (leases.free, leases.kept) == (1, 1)
    assert await _server_pid(leases) not in pids
    await store.close()


async def test_a_cancelled_statement_does_not_leave_its_connection_in_use(pg_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(pg_engine, cache_states=False)
    leases = leases_for(pg_engine)
    await _missing(store)
    before = await _server_pid(leases)
    slow = RawStatement(text("SELECT pg_sleep(:seconds)"), pg_engine.dialect)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow.fetchval(leases, {"seconds": 5}), 0.2)
    # Terminated mid-statement: neither kept nor back in the pool.
    assert (leases.free, leases.kept) == (0, 0)
    assert pg_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await _missing(store)
    assert await _server_pid(leases) != before
    await store.close()


async def test_sql_errors_keep_the_connection(pg_engine: AsyncEngine) -> None:
    leases = leases_for(pg_engine)
    failing = RawStatement(text("SELECT 1 / :zero"), pg_engine.dialect)
    with pytest.raises(DBAPIError) as raised:
        await failing.fetchval(leases, {"zero": 0})
    assert not raised.value.connection_invalidated
    assert type(raised.value.orig).__name__ == "DivisionByZeroError"
    assert (leases.free, leases.kept) == (1, 1)
    await leases.release_idle()


async def test_without_a_queue_pool_every_statement_borrows_its_own(pg_database_url: str) -> None:
    engine = create_async_engine(pg_database_url, poolclass=NullPool)
    try:
        store = SQLAlchemyStore(engine)
        checkouts = _count_checkouts(engine)
        await _missing(store, 3)
        assert checkouts[0] == 3
        assert leases_for(engine).limit == 0
        assert (leases_for(engine).free, leases_for(engine).kept) == (0, 0)
    finally:
        await engine.dispose()


async def _round(engine: AsyncEngine) -> int:
    store = SQLAlchemyStore(engine, cache_states=False)
    await asyncio.gather(*(_missing(store, 3) for _ in range(3)))
    pid = await _server_pid(leases_for(engine))
    await store.close()
    await engine.dispose()
    return pid


def test_each_event_loop_gets_its_own_connections(pg_database_url: str) -> None:
    # An engine per loop, and one engine used in two loops (disposed in between, as SQLAlchemy
    # requires): a loop never gets a connection opened in another.
    first = create_database_engine(pg_database_url, connect_args={"server_settings": {"application_name": "leases"}})
    one = asyncio.run(_round(first))
    two = asyncio.run(_round(first))
    assert one != two
    other = create_database_engine(pg_database_url)
    asyncio.run(_round(other))


def test_a_loop_switch_drops_the_other_loops_connections(pg_database_url: str) -> None:
    engine = create_async_engine(pg_database_url, poolclass=NullPool)
    leases = Leases(engine, limit=2, hold=60.0)
    loop = asyncio.new_event_loop()
    try:
        pid = loop.run_until_complete(_server_pid(leases))
        assert leases.free == 1
        other = asyncio.new_event_loop()
        try:
            assert other.run_until_complete(_server_pid(leases)) != pid
            assert leases.free == 1
            other.run_until_complete(leases.release_idle())
        finally:
            other.close()
        loop.run_until_complete(asyncio.sleep(0))  # the dropped connection's socket closes in its loop
    finally:
        loop.close()
