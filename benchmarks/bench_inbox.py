"""The read side at scale: one user's inbox and an instance list on PostgreSQL with 1k and 100k open tasks.

For each size the script makes a fresh database (dropped afterwards), creates flowstar's
tables, fills them with SQL (``INSERT ... SELECT FROM generate_series``: seconds, not the
minutes the engine would take) and ``ANALYZE``s them, then times, through the engine:

- ``inbox_first_page``: ``find_tasks(user=..., status=pending, limit=50)`` of one user (their
  tasks and their two groups' tasks, in their tenant);
- ``inbox_next_page``: the page after it (its cursor);
- ``instance_page``: ``find_instances(user=admin, limit=50)`` (an admin's list: the tenant's
  instances, newest first);
- ``get_tasks_assignee`` and ``list_instances_offset``: the reference API's calls the lists
  replace (every matching row; ``OFFSET`` plus a count), for comparison.

Every open task belongs to one instance.  Tasks are spread over ``TENANTS`` tenants with
``USERS`` users and ``GROUPS`` groups each: two thirds are assigned to a user, every one to a
group.  The measured user has ~2% of the tasks as their own and ~20% through their groups.

It prints one JSON object on stdout (p50/p99 in milliseconds per call and size, the ratio of
the largest size to the smallest, the indexes PostgreSQL's plans use and whether any plan
scans a whole table); progress goes to stderr.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _pg import fresh_database
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import TaskStatus, User
from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata
from flowstar.db._queries import instance_page, task_page
from flowstar.model.pages import InstanceQuery, TaskQuery
from flowstar.model.registry import WorkflowRegistry

DEFAULT_PG = os.environ.get("FLOWSTAR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
TENANTS = 5
USERS = 10
GROUPS = 4
USER = User(id="t0-u0", groups=frozenset({"t0-g0", "t0-g1"}), tenant_id="t0")
# Whose instance list is timed: an admin's holds every instance of the tenant (anyone else's
# only the instances they started).
ADMIN = User(id="t0-admin", tenant_id="t0", is_admin=True)
TARGETS = {"max_p99_ms": 20.0, "max_ratio": 1.5}
PAGE = 50
PAGES = ("inbox_first_page", "inbox_next_page", "instance_page")
REFERENCE = ("get_tasks_assignee", "list_instances_offset")

# Row i: tenant i % TENANTS; within the tenant r = i / TENANTS picks the user (none when
# r % 3 = 2) and the group.  Times are one second apart, so pages are in row order.
_FILL_INSTANCES = """
INSERT INTO workflow_instances (id, workflow_name, workflow_version, status, current_step, context_data,
    metadata, started_at, tenant_id, created_by, lock_version, tokens, joins, history, created_at, updated_at)
SELECT md5('i' || i)::uuid, 'inbox', '1.0.0', 'waiting', 'review', '{"n": 1}'::jsonb, '{}'::jsonb,
    timestamptz '2026-01-01' + i * interval '1 second', 't' || (i % :tenants), 'c' || (i % 7), 2,
    '{}'::jsonb, '{}'::jsonb, '[]'::jsonb, now(), now()
FROM generate_series(0, :n - 1) AS i
"""
_FILL_TASKS = """
INSERT INTO workflow_human_tasks (id, instance_id, workflow_name, step_name, title, assignee_id, assignee_group,
    due_at, status, tenant_id, created_at, updated_at)
SELECT md5('t' || i)::uuid, md5('i' || i)::uuid, 'inbox', 'review', 'Review ' || i,
    CASE WHEN (i / :tenants) % 3 = 2 THEN NULL ELSE 't' || (i % :tenants) || '-u' || ((i / :tenants) % :users) END,
    't' || (i % :tenants) || '-g' || ((i / :tenants) % :groups),
    timestamptz '2026-01-02' + i * interval '1 second', 'pending', 't' || (i % :tenants),
    timestamptz '2026-01-01' + i * interval '1 second', now()
FROM generate_series(0, :n - 1) AS i
"""
_FILL_CANDIDATES = """
INSERT INTO workflow_task_candidates (task_id, kind, name, tenant_id)
SELECT id, 'group', assignee_group, tenant_id FROM workflow_human_tasks
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def fill(db: AsyncEngine, n: int) -> float:
    """Create the tables and ``n`` waiting instances with one open task each; seconds taken."""
    began = time.perf_counter()
    params = {"n": n, "tenants": TENANTS, "users": USERS, "groups": GROUPS}
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text(_FILL_INSTANCES), params)
        await conn.execute(text(_FILL_TASKS), params)
        if "workflow_task_candidates" in metadata.tables:
            # As the store writes them: the assignee group is a "group" candidate too.
            await conn.execute(text(_FILL_CANDIDATES))
    async with db.begin() as conn:
        # Fresh statistics, as autovacuum would have gathered on a database that grew so.
        await conn.execute(text("ANALYZE workflow_instances"))
        await conn.execute(text("ANALYZE workflow_human_tasks"))
        if "workflow_task_candidates" in metadata.tables:
            await conn.execute(text("ANALYZE workflow_task_candidates"))
    return time.perf_counter() - began


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", ()):
        found.extend(_plan_nodes(child))
    return found


async def explain(db: AsyncEngine, query: Any) -> dict[str, Any]:
    """The indexes PostgreSQL's plan of ``query`` reads, whether it scans a table, and its time."""
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    async with db.connect() as conn:
        plan = (await conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))).scalar_one()
    document = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    nodes = _plan_nodes(document["Plan"])
    return {
        "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
        "seq_scan": any(n["Node Type"] == "Seq Scan" for n in nodes),
        "execution_ms": round(document["Execution Time"], 3),
    }


async def timed(call: Callable[[], Awaitable[Any]], queries: int) -> dict[str, float]:
    """p50 and p99 of ``call`` in milliseconds, after a warm-up."""
    for _ in range(max(5, queries // 10)):
        await call()
    samples = []
    for _ in range(queries):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(samples), 3), "p99_ms": round(cuts[98], 3)}


def _mine(task: Any) -> bool:
    return task.tenant_id == USER.tenant_id and (task.assignee_id == USER.id or task.assignee_group in USER.groups)


async def measure(db: AsyncEngine, n: int, queries: int) -> dict[str, Any]:
    """Every timed call on a database holding ``n`` open tasks."""
    engine = PersistentExecutionEngine(WorkflowRegistry(), engine=db)
    try:
        first = await engine.find_tasks(user=USER, status=TaskStatus.PENDING, limit=PAGE)
        if first.next_cursor is None:
            raise SystemExit(f"{n} open tasks give the user one page only: use at least 500")
        second = await engine.find_tasks(user=USER, status=TaskStatus.PENDING, limit=PAGE, cursor=first.next_cursor)
        instances = await engine.find_instances(user=ADMIN, limit=PAGE)
        own = await engine.get_tasks(assignee_id=USER.id)
        result: dict[str, Any] = {
            "open_tasks": n,
            "counts": {
                "inbox_first_page": len(first.items),
                "inbox_next_page": len(second.items),
                "inbox_pages_disjoint": not {t.id for t in first.items} & {t.id for t in second.items},
                "inbox_items_mine": all(_mine(t) for t in [*first.items, *second.items]),
                "instance_page": len(instances.items),
                "instance_page_in_tenant": all(i.tenant_id == USER.tenant_id for i in instances.items),
                "get_tasks_assignee_rows": len(own),
            },
        }
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "inbox_first_page": lambda: engine.find_tasks(user=USER, status=TaskStatus.PENDING, limit=PAGE),
            "inbox_next_page": lambda: engine.find_tasks(
                user=USER, status=TaskStatus.PENDING, limit=PAGE, cursor=first.next_cursor
            ),
            "instance_page": lambda: engine.find_instances(user=ADMIN, limit=PAGE),
            "get_tasks_assignee": lambda: engine.get_tasks(assignee_id=USER.id),
            "list_instances_offset": lambda: engine.list_instances(tenant_id=USER.tenant_id, limit=PAGE, offset=500),
        }
        for name, call in calls.items():
            # The reference calls read every match: fewer samples keep the run short.
            result[name] = await timed(call, queries if name in PAGES else max(20, queries // 5))
            log(f"  {n:>7} {name}: {result[name]}")
        inbox = TaskQuery(
            status=TaskStatus.PENDING,
            scoped=True,
            tenant_id=USER.tenant_id,
            user_id=USER.id,
            user_groups=USER.groups,
            limit=PAGE,
        )
        listed = InstanceQuery(scoped=True, tenant_id=USER.tenant_id, limit=PAGE)
        result["plans"] = {
            "inbox_first_page": await explain(db, task_page(inbox)),
            "instance_page": await explain(db, instance_page(listed)),
        }
        return result
    finally:
        await engine.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for n in args.sizes:
        async with fresh_database(args.pg_url, "inbox") as url:
            db = create_database_engine(url)
            try:
                seconds = await fill(db, n)
                log(f"{n} open tasks filled in {seconds:.2f}s")
                sizes[str(n)] = {"fill_seconds": round(seconds, 2), **await measure(db, n, args.queries)}
            finally:
                await db.dispose()
    small, large = sizes[str(min(args.sizes))], sizes[str(max(args.sizes))]
    ratios = {name: round(large[name]["p99_ms"] / small[name]["p99_ms"], 2) for name in (*PAGES, *REFERENCE)}
    lists = ("inbox_first_page", "instance_page")
    return {
        "benchmark": "inbox",
        "config": {
            "sizes": args.sizes,
            "queries": args.queries,
            "page": PAGE,
            "tenants": TENANTS,
            "users_per_tenant": USERS,
            "groups_per_tenant": GROUPS,
        },
        "sizes": sizes,
        "p99_ratio_largest_to_smallest": ratios,
        "targets": TARGETS,
        "meets_targets": all(large[name]["p99_ms"] <= TARGETS["max_p99_ms"] for name in lists)
        and all(ratios[name] <= TARGETS["max_ratio"] for name in lists),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1_000, 100_000])
    parser.add_argument("--queries", type=int, default=500, help="timed calls per list and size")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL; databases are made and dropped")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
