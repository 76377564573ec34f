"""A notifier process: one notification per new task, reassignment and status change.

It reads the event stream through the consumer group ``flowstar-notifier``, so events that
happen while it is down are sent when it is back, and it sends them through a
``LoggingSender`` (use ``flowstar.redis.smtp.SmtpSender`` to e-mail them instead).

Run it beside the app and its workers: ``python examples/notifier.py``.  It connects to
``FLOWSTAR_REDIS_URL``, or else to the embedded Redis in ``.flowstar/`` (the one the app
started, or a new one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from flowstar.redis import LoggingSender, RedisStreamEventBus, Sender, connect_redis, deliver_notifications


async def run(
    redis_url: str | None = None,
    *,
    sender: Sender | None = None,
    key_prefix: str = "",
    ready: asyncio.Event | None = None,
) -> None:
    """Send notifications until cancelled.

    Args:
        redis_url: Redis to use; None for the embedded server.
        sender: Where notifications go (default: the log).
        key_prefix: Key prefix of the event stream (as configured for the app).
        ready: Set once no event published from then on can be missed.
    """
    handle = await connect_redis(redis_url)
    bus = RedisStreamEventBus(handle.client, key_prefix=key_prefix)
    try:
        await deliver_notifications(bus, sender or LoggingSender(), ready=ready)
    finally:
        await bus.close()
        await handle.close()


def main() -> None:
    """Entry point: run until Ctrl-C."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(os.environ.get("FLOWSTAR_REDIS_URL") or None))


if __name__ == "__main__":
    main()
