"""The test kit: time-skipping for tests of your own workflows (graph or code-first).

Runs sleeps, wait timeouts, retries, reminders, escalations and event offsets without
waiting.

Build the engine with a ``ManualClock`` and move time with ``advance``: every timer due
within the jump fires at its own time, in order (a reminder loop that sleeps 24 hours
reminds three times in ``advance(engine, clock, timedelta(days=3))``), and ``advance``
returns once every instance has settled.

```python
clock = ManualClock()
flow.engine.use(LocalExecutionEngine(registry, clock=clock))
run = await flow.engine.start("reminders", user_id=1)
await advance(flow.engine, clock, timedelta(hours=72))
assert (await run.refresh()).context.reminders_sent == 3
```

Works with the engines that run steps in this process (``LocalExecutionEngine`` and
``PersistentExecutionEngine``); pure Python, no real sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowstar.engine.clock import ManualClock

if TYPE_CHECKING:
    from flowstar.engine.core import Engine
    from flowstar.model.state import CommitPlan

__all__ = ["ManualClock", "advance", "next_due", "settle"]

_YIELDS = 8
_IDLE_ROUNDS = 50


def _engine_of(engine: Any) -> Engine:
    inner = getattr(engine, "engine", None)  # a FlowEngine facade
    return inner if inner is not None and hasattr(inner, "store") else engine  # type: ignore[no-any-return]


async def _due_now(engine: Engine) -> bool:
    now = engine.clock.now()
    for _instance, token in await engine.store.pending_tokens(due_before=now):
        if (token.due_at or token.created_at) <= now:
            return True
    return False


async def settle(engine: Any) -> int:
    """Wait until nothing runs and nothing due by the clock is left to start.

    Args:
        engine: an in-process engine (or a ``FlowEngine`` facade over one).

    Returns:
        How many instances changed meanwhile (counted from the engine's commits).
    """
    engine = _engine_of(engine)
    changed: set[str] = set()

    def record(plan: CommitPlan) -> None:
        changed.add(plan.instance.id)

    engine.commit_listeners.append(record)
    try:
        await _until_idle(engine)
    finally:
        engine.commit_listeners.remove(record)
    return len(changed)


async def _until_idle(engine: Engine) -> None:
    running_of = getattr(engine.dispatcher, "running_instances", None)
    idle = 0
    while True:
        for _ in range(_YIELDS):  # let woken timers start their tasks
            await asyncio.sleep(0)
        running = list(running_of()) if callable(running_of) else []
        if running:
            idle = 0
            for instance_id in running:
                await engine.settled(instance_id)
            continue
        if not await _due_now(engine):
            return
        idle += 1
        if idle >= _IDLE_ROUNDS:  # due work no dispatcher of this process holds
            return


async def next_due(engine: Any, after: datetime | None = None) -> datetime | None:
    """The earliest time a timer, retry, reminder or pending start is due after ``after``
    (default: now)."""
    engine = _engine_of(engine)
    after = after or engine.clock.now()
    times = [t.due_at for _i, t in await engine.store.pending_tokens() if t.due_at is not None and t.due_at > after]
    return min(times, default=None)


async def advance(engine: Any, clock: ManualClock, delta: timedelta | float, *, max_jumps: int = 10_000) -> datetime:
    """Move ``clock`` forward by ``delta``, firing each timer due on the way at its own time.

    Returns the new time, once every instance has settled.

    Raises:
        RuntimeError: more than ``max_jumps`` timers fired (a workflow that sleeps forever
            in a tight loop).
    """
    step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
    if step < timedelta(0):
        raise ValueError("a clock cannot go backwards")
    target = clock.now() + step
    await settle(engine)
    for _ in range(max_jumps):
        due = await next_due(engine)
        if due is None or due > target:
            break
        clock.set(due)
        await settle(engine)
    else:
        raise RuntimeError(f"more than {max_jumps} timers fired while advancing {step}")
    clock.set(target)
    await settle(engine)
    return target
