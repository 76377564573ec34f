"""The Redis Stream event bus: events appended to a stream, read through consumer groups.

Delivery is *at least once*.  An entry a consumer read stays pending in its group until it
is acknowledged; a consumer that restarts under the same name gets its own pending entries
again first; entries left pending by a consumer that died are claimed by a live one once
they have been idle for ``claim_idle_ms``; an entry delivered more than ``max_deliveries``
times is moved to the dead-letter stream ``<stream>:dead`` and acknowledged.  ``trim()``
removes only entries every group has acknowledged (see ``trim.lua``); ``XADD MAXLEN`` is
never used because it drops pending entries with their payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flowstar.engine.bus import EventBus
from flowstar.model.events import WorkflowEvent, decode_event, encode_event
from flowstar.redis._cancel import raise_if_cancel_requested

__all__ = ["DEFAULT_STREAM", "DeadLetter", "Delivery", "RedisStreamEventBus", "TrimResult", "default_consumer_name"]

DEFAULT_STREAM = "flowstar:events"
_TRIM_LUA = resources.files("flowstar.redis").joinpath("trim.lua").read_text(encoding="utf-8")

# (entry id, fields) with field names as text and values as Redis returned them.
_Entry = tuple[str, dict[str, Any]]
_TypeFilter = Iterable[str | type[WorkflowEvent]] | None

log = structlog.get_logger("flowstar.events.redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One stream entry handed to one consumer of a group.

    Attributes:
        event: The decoded event.
        entry_id: The stream entry id.
        group: The consumer group it was delivered in.
        consumer: The consumer it is pending for until acknowledged.
        delivery_count: How many times the group has delivered it (1 on first delivery).
    """

    event: WorkflowEvent
    entry_id: str
    group: str
    consumer: str
    delivery_count: int
    bus: RedisStreamEventBus = field(repr=False, compare=False)

    async def ack(self) -> None:
        """Mark the entry handled for this group; acknowledging twice is harmless."""
        await self.bus.ack(self.group, self.entry_id)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry moved to the dead-letter stream, with why and after how many deliveries."""

    entry_id: str
    source_id: str
    group: str
    consumer: str
    deliveries: int
    reason: str
    event_type: str
    data: bytes

    def event(self) -> WorkflowEvent:
        """Decode the event (raises ``msgspec.DecodeError`` for the undecodable ones)."""
        return decode_event(self.data)


@dataclass(frozen=True, slots=True)
class TrimResult:
    """What ``trim()`` did: entries removed, the id kept entries start at, length after."""

    removed: int
    floor: str | None
    length: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _type_names(types: _TypeFilter) -> frozenset[str] | None:
    if types is None:
        return None
    return frozenset(t if isinstance(t, str) else t.__name__ for t in types)


def _entries(reply: Any) -> list[_Entry]:
    """Entries of an XREAD/XREADGROUP reply for one stream."""
    if not reply:
        return []
    # RESP2 replies [[key, entries]]; RESP3 replies {key: [entries]}.
    per_stream = [v[0] for v in reply.values()] if isinstance(reply, Mapping) else [item[1] for item in reply]
    return [
        (_text(entry_id), {_text(k): v for k, v in (fields or {}).items()})
        for stream_entries in per_stream
        for entry_id, fields in stream_entries
    ]


def default_consumer_name() -> str:
    """A consumer name unique to this call: host, process id and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RedisStreamEventBus(EventBus):
    """An ``EventBus`` that appends every event to a Redis Stream.

    ``emit``/``publish`` add the events to the stream (a batch in one round trip) and then
    call the in-process handlers.  Other processes read them with ``subscribe`` (events,
    acknowledged once the loop body finished) or ``deliveries`` (explicit ``ack()``).

    Args:
        redis: The client (bytes responses, as for SAQ).  Not closed by ``close()`` unless
            ``owns_client``.
        stream: Stream name.
        key_prefix: Prepended to the stream name (and so to the dead-letter stream).
        claim_idle_ms: Entries pending longer than this for any consumer are claimed by a
            reading consumer: set it above the longest time a handler may take.
        max_deliveries: An entry delivered more often is dead-lettered instead.
        block_ms: Longest wait of one blocking read (bounds how late ``close()`` is seen).
        batch_size: Entries read or claimed per round trip.
        trim_every: Call ``trim()`` after this many published events (0: never).
        backlog_warning: Log a warning when the stream is still this long after trimming.
        owns_client: Close ``redis`` in ``close()``.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        stream: str = DEFAULT_STREAM,
        key_prefix: str = "",
        claim_idle_ms: int = 60_000,
        max_deliveries: int = 5,
        block_ms: int = 1_000,
        batch_size: int = 100,
        trim_every: int = 1_000,
        backlog_warning: int = 100_000,
        owns_client: bool = False,
    ) -> None:
        super().__init__()
        if max_deliveries < 1 or claim_idle_ms < 1 or block_ms < 1 or batch_size < 1 or trim_every < 0:
            raise ValueError("max_deliveries, claim_idle_ms, block_ms and batch_size must be positive")
        self.redis = redis
        self.stream_key = f"{key_prefix}{stream}"
        self.dead_letter_key = f"{self.stream_key}:dead"
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.block_ms = block_ms
        self.batch_size = batch_size
        self.trim_every = trim_every
        self.backlog_warning = backlog_warning
        self._owns_client = owns_client
        self._trim_script = redis.register_script(_TRIM_LUA)
        self._since_trim = 0
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStreamEventBus:
        """A bus with a client of its own for ``url`` (closed with the bus)."""
        return cls(Redis.from_url(url), owns_client=True, **kwargs)

    # -- publishing ---------------------------------------------------------------------

    async def emit(self, event: WorkflowEvent) -> None:
        """Append ``event`` to the stream, then call in-process handlers."""
        await self.publish((event,))

    async def publish(self, events: Iterable[WorkflowEvent]) -> list[str]:
        """Append ``events`` in one round trip, then call in-process handlers.

        Returns:
            The entry ids, in order.
        """
        batch = list(events)
        if not batch:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in batch:
                pipe.xadd(self.stream_key, {"type": event.type, "data": encode_event(event)})
            ids = await pipe.execute()
        # Handlers run only once the events are in the stream: if the append fails the
        # caller retries the whole publication and handlers have not seen half of it.
        for event in batch:
            await super().emit(event)
        self._since_trim += len(batch)
        if self.trim_every and self._since_trim >= self.trim_every:
            self._since_trim = 0
            try:
                await self.trim()
            except Exception:
                # Trimming is housekeeping: a failure must not fail the publication.
                log.exception("stream trim failed", stream=self.stream_key)
        return [_text(entry_id) for entry_id in ids]

    async def trim(self) -> TrimResult:
        """Remove the entries that every consumer group has acknowledged.

        Entries still pending in a group, or not yet delivered to it, are never removed
        (with no group at all, nothing is).  Publishers call this every ``trim_every``
        events; call it yourself for another schedule.
        """
        removed, floor, length = await self._trim_script(keys=[self.stream_key])
        result = TrimResult(int(removed), _text(floor) if floor else None, int(length))
        if result.length >= self.backlog_warning:
            log.warning(
                "event stream backlog: a consumer group is behind or has a dead consumer",
                stream=self.stream_key,
                length=result.length,
                floor=result.floor,
            )
        return result

    # -- consuming ----------------------------------------------------------------------

    async def ensure_group(self, group: str, start: str = "$") -> bool:
        """Create consumer group ``group`` (and the stream) unless it exists.

        Args:
            group: Group name.
            start: Where a *new* group starts: ``"$"`` (events appended from now on) or
                ``"0"`` (everything still in the stream).  An existing group keeps its place.

        Returns:
            Whether the group was created.
        """
        try:
            await self.redis.xgroup_create(self.stream_key, group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    async def ack(self, group: str, *entry_ids: str) -> int:
        """Acknowledge entries for ``group``; returns how many were pending."""
        if not entry_ids:
            return 0
        return int(await self.redis.xack(self.stream_key, group, *entry_ids))

    async def pending_count(self, group: str) -> int:
        """How many entries are delivered but not acknowledged in ``group``."""
        summary = await self.redis.xpending(self.stream_key, group)
        return int(summary["pending"])

    async def subscribe(
        self,
        group: str | None = None,
        types: _TypeFilter = None,
        *,
        consumer: str | None = None,
        start: str = "$",
    ) -> AsyncIterator[WorkflowEvent]:
        """Yield events; with a ``group``, each is acknowledged when the next is requested.

        An event counts as handled when the loop body finished without an exception and
        asked for the next one.  If the body raises, or the loop is left with ``break``,
        the last event stays pending and is delivered again (to this consumer name after a
        restart, or to any consumer of the group after ``claim_idle_ms``).  Use
        ``deliveries()`` to acknowledge explicitly.

        Without a ``group`` this is a live tail: events appended from now on, no
        acknowledgement, nothing re-delivered (for live feeds such as SSE).

        Args:
            group: Consumer group, or None for a live tail.
            types: Event types (names or classes) to yield; others are acknowledged and
                skipped.
            consumer: Consumer name; pass a stable one so a restarted process gets its
                pending entries back at once.  Default: unique per call.
            start: Where the group starts if it does not exist yet (see ``ensure_group``).
        """
        if group is None:
            async for event in self._tail(_type_names(types)):
                yield event
            return
        # aclosing: when our caller leaves its loop, the inner generator is closed now,
        # not whenever the garbage collector gets to it.
        async with contextlib.aclosing(self.deliveries(group, consumer=consumer, types=types, start=start)) as stream:
            async for delivery in stream:
                yield delivery.event
                # Only reached when the caller asks for the next event.
                await delivery.ack()

    async def deliveries(
        self,
        group: str,
        *,
        consumer: str | None = None,
        types: _TypeFilter = None,
        start: str = "$",
    ) -> AsyncGenerator[Delivery, None]:
        """Yield ``Delivery`` objects of ``group`` until ``close()``; call ``ack()`` on each.

        Order: first this consumer's own pending entries (left by an earlier run under the
        same name), then, interleaved, entries claimed from consumers idle longer than
        ``claim_idle_ms`` (this one included, so an entry never acknowledged is retried)
        and new entries.  Entries of other ``types`` are acknowledged and skipped; an entry
        delivered more than ``max_deliveries`` times, or that cannot be decoded, goes to the
        dead-letter stream and is acknowledged.

        Args:
            group: Consumer group.
            consumer: Consumer name (see ``subscribe``).
            types: Event types to deliver.
            start: Where the group starts if it does not exist yet.
        """
        wanted = _type_names(types)
        name = consumer or default_consumer_name()
        await self.ensure_group(group, start)

        # Reading from id 0 returns this consumer's pending entries rather than new ones.
        cursor = "0-0"
        while not self._closed:
            raise_if_cancel_requested()
            entries = await self._read(group, name, cursor)
            if not entries:
                break
            cursor = entries[-1][0]
            for delivery in await self._accept(group, name, entries, wanted, fresh=False):
                yield delivery

        loop = asyncio.get_running_loop()
        claim_cursor = "0-0"
        next_claim = loop.time()
        # Look for claimable entries twice per idle period, so none waits much longer.
        claim_interval = self.claim_idle_ms / 2000
        while not self._closed:
            raise_if_cancel_requested()
            if loop.time() >= next_claim:
                claim_cursor, entries = await self._claim(group, name, claim_cursor)
                # A cursor other than 0-0 means more of the pending list is left to scan.
                next_claim = loop.time() + (0 if claim_cursor != "0-0" else claim_interval)
                for delivery in await self._accept(group, name, entries, wanted, fresh=False):
                    yield delivery
            block_ms = max(1, min(self.block_ms, int((next_claim - loop.time()) * 1000)))
            entries = await self._read(group, name, ">", block_ms=block_ms, start=start)
            for delivery in await self._accept(group, name, entries, wanted, fresh=True):
                yield delivery

    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` entries of the dead-letter stream."""
        letters = []
        reply: Any = await self.redis.xrange(self.dead_letter_key, count=count)
        for entry_id, raw in reply:
            fields = {_text(k): v for k, v in raw.items()}
            letters.append(
                DeadLetter(
                    entry_id=_text(entry_id),
                    source_id=_text(fields["source_id"]),
                    group=_text(fields["group"]),
                    consumer=_text(fields["consumer"]),
                    deliveries=int(fields["deliveries"]),
                    reason=_text(fields["reason"]),
                    event_type=_text(fields.get("type", b"")),
                    data=_bytes(fields.get("data", b"")),
                )
            )
        return letters

    async def close(self) -> None:
        """Stop subscriptions (each ends after at most ``block_ms``); close an owned client."""
        self._closed = True
        if self._owns_client:
            await self.redis.aclose()

    # -- internals ----------------------------------------------------------------------

    async def _read(
        self, group: str, consumer: str, cursor: str, *, block_ms: int | None = None, start: str = "$"
    ) -> list[_Entry]:
        streams: dict[Any, Any] = {self.stream_key: cursor}
        try:
            reply = await self.redis.xreadgroup(group, consumer, streams, count=self.batch_size, block=block_ms)
        except ResponseError as exc:
            # The stream or group was deleted under us (UNBLOCKED: while we were blocked on
            # it): create it again and go on.
            if not str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                raise
            await self.ensure_group(group, start)
            return []
        return _entries(reply)

    async def _claim(self, group: str, consumer: str, cursor: str) -> tuple[str, list[_Entry]]:
        try:
            reply = await self.redis.xautoclaim(
                self.stream_key, group, consumer, self.claim_idle_ms, cursor, count=self.batch_size
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return "0-0", []
        # Redis 7 adds a third element, ids deleted while pending (already dropped from the
        # pending list).  Redis 6.2 instead returns such entries as nil, without their id,
        # and keeps them pending for us: find and acknowledge them separately.
        claimed = [
            (_text(entry_id), {_text(k): v for k, v in (fields or {}).items()})
            for entry_id, fields in reply[1]
            if entry_id is not None
        ]
        if len(claimed) < len(reply[1]):
            await self._ack_deleted(group, consumer)
        return _text(reply[0]), claimed

    async def _ack_deleted(self, group: str, consumer: str) -> None:
        pending: Any = await self.redis.xpending_range(
            self.stream_key, group, min="-", max="+", count=self.batch_size, consumername=consumer
        )
        ids = [_text(item["message_id"]) for item in pending]
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(self.stream_key, min=entry_id, max=entry_id, count=1)
            found = await pipe.execute()
        gone = [entry_id for entry_id, entries in zip(ids, found, strict=True) if not entries]
        if gone:
            log.warning("pending entries were deleted from the stream", stream=self.stream_key, entry_ids=gone)
            await self.ack(group, *gone)

    async def _delivery_counts(self, group: str, consumer: str, ids: Sequence[str]) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xpending_range(self.stream_key, group, min=entry_id, max=entry_id, count=1, consumername=consumer)
            replies = await pipe.execute()
        counts: dict[str, int] = {}
        for reply in replies:
            for item in reply:
                counts[_text(item["message_id"])] = int(item["times_delivered"])
        return counts

    async def _accept(
        self, group: str, consumer: str, entries: list[_Entry], wanted: frozenset[str] | None, *, fresh: bool
    ) -> list[Delivery]:
        """Turn entries into deliveries; ack, skip or dead-letter the ones not to deliver."""
        if not entries:
            return []
        # A new entry (read with ">") is on its first delivery; others were counted by Redis.
        counts = {} if fresh else await self._delivery_counts(group, consumer, [e[0] for e in entries])
        skipped: list[str] = []
        deliveries: list[Delivery] = []
        for entry_id, fields in entries:
            if not fields:
                log.warning("pending entry was deleted from the stream", stream=self.stream_key, entry_id=entry_id)
                skipped.append(entry_id)
                continue
            event_type = _text(fields.get("type", ""))
            if wanted is not None and event_type and event_type not in wanted:
                skipped.append(entry_id)
                continue
            count = counts.get(entry_id, 1)
            if count > self.max_deliveries:
                await self._dead_letter(
                    group, consumer, entry_id, fields, count=count, reason="delivered too many times"
                )
                continue
            try:
                event = decode_event(fields["data"])
            except (KeyError, msgspec.DecodeError) as exc:
                await self._dead_letter(group, consumer, entry_id, fields, count=count, reason=f"undecodable: {exc!r}")
                continue
            if wanted is not None and event.type not in wanted:
                skipped.append(entry_id)
                continue
            deliveries.append(
                Delivery(event=event, entry_id=entry_id, group=group, consumer=consumer, delivery_count=count, bus=self)
            )
        await self.ack(group, *skipped)
        return deliveries

    async def _dead_letter(
        self, group: str, consumer: str, entry_id: str, fields: dict[str, Any], *, count: int, reason: str
    ) -> None:
        letter: dict[Any, Any] = {
            **fields,
            "source_id": entry_id,
            "group": group,
            "consumer": consumer,
            "deliveries": str(count),
            "reason": reason,
        }
        # One transaction: the entry is never both dead-lettered and still pending, nor lost.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter_key, letter)
            pipe.xack(self.stream_key, group, entry_id)
            await pipe.execute()
        log.warning(
            "event dead-lettered",
            stream=self.stream_key,
            entry_id=entry_id,
            group=group,
            deliveries=count,
            reason=reason,
        )

    async def _tail(self, wanted: frozenset[str] | None) -> AsyncIterator[WorkflowEvent]:
        last: Any = await self.redis.xrevrange(self.stream_key, count=1)
        cursor = _text(last[0][0]) if last else "0-0"
        while not self._closed:
            raise_if_cancel_requested()
            reply = await self.redis.xread({self.stream_key: cursor}, count=self.batch_size, block=self.block_ms)
            for entry_id, fields in _entries(reply):
                cursor = entry_id
                try:
                    event = decode_event(fields["data"])
                except (KeyError, msgspec.DecodeError):
                    log.warning("undecodable stream entry skipped", stream=self.stream_key, entry_id=entry_id)
                    continue
                if wanted is None or event.type in wanted:
                    yield event
