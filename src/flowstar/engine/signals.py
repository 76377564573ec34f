"""The engine's signal and event calls: ``signal``, ``report_event`` and event-triggered starts.

A signal or event is first logged in the store, then delivered to the instances that wait
for it now.  A wait that begins later looks in the log when it opens (``EngineLoop._early_arrival``),
so an arrival a moment before the wait is not lost; the instance remembers the last entry of
each name it consumed, so none is delivered to it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from flowstar.engine.batches import in_batches
from flowstar.engine.ids import new_id
from flowstar.engine.tasks import EngineTasks
from flowstar.model.access import User, check_instance
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import ACTIVE_WORKFLOW_STATUSES
from flowstar.model.errors import PermissionDeniedError, ValidationError
from flowstar.model.moments import aware
from flowstar.model.signals import matching_wait
from flowstar.model.state import IDEMPOTENCY_KEY_LIMIT, InstanceState, SignalEntry

__all__ = [
    "RESCHEDULE_WINDOW",
    "EngineSignals",
    "event_entry",
    "event_key",
    "not_started",
    "signal_name",
    "triggered_data",
]

log = structlog.get_logger("flowstar.engine")

# Instances woken per page of ``Store.waiting_instances`` (a broadcast goes page by page).
_WAKE_PAGE = 500
# Instances of a page woken at once (each wake commits, and runs what follows it).
_WAKE_AT_ONCE = 16
# How far back ``report_event`` looks for an earlier time of the same entity's event.
RESCHEDULE_WINDOW = timedelta(days=366)


class EngineSignals(EngineTasks):
    """Signal and event calls of ``Engine`` (its base class)."""

    async def signal(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        instance_id: UUID | str | None = None,
        tenant_id: str | None = None,
        user: User | None = None,
    ) -> int:
        """Send signal ``name``: its payload is merged into the data of the instances it wakes.

        With ``instance_id`` it is for that instance only; without, for every instance of
        the tenant (``user``'s tenant when a user is given) that waits for it.  Instances that
        start waiting for it later receive it too, within their wait's lookback (a signal for
        one instance that waits for it now is delivered at once, without the log).  Returns
        how many instances it woke now.

        Raises:
            ValidationError: an empty name, or a payload that is not a JSON object within the
                size limit.
            InstanceNotFoundError: ``instance_id`` names no instance (of the user's tenant).
            PermissionDeniedError: a ``user`` who may not see the instance, or who is no admin
                and signals every instance.
        """
        if user is not None:
            tenant_id = user.tenant_id
        target = state = None
        if instance_id is not None:
            state = await self._load(str(instance_id))
            check_instance(state, user)
            target, tenant_id = state.id, state.tenant_id
        elif user is not None and not user.is_admin:
            raise PermissionDeniedError("only an admin may signal every waiting instance")
        entry = SignalEntry(
            id=new_id(),
            kind="signal",
            name=signal_name(name, "signal name"),
            tenant_id=tenant_id,
            instance_id=target,
            payload=self._payload(payload or {}, "signal payload"),
            recorded_at=self.clock.now(),
        )
        if state is not None and await self._deliver_now(state, entry):
            return 1
        await self.store.record_signal(entry)
        return await self._deliver_entry(entry)

    async def _deliver_now(self, state: InstanceState, entry: SignalEntry) -> bool:
        """Deliver a signal for one instance that waits for it now, in one commit, unlogged.

        The log is for waits that open later, and for finishing deliveries a crash cut short;
        this delivery is the commit itself, and the caller learns whether it happened.  When
        the instance does not wait for it (yet), the signal goes through the log.
        """
        token = matching_wait(state, entry)
        if token is None:
            return False
        plan = await self._deliver(state, token.id, entry)
        if plan is None:
            return False  # the wait ended meanwhile: the log decides
        await self._follow_call(plan)
        return True

    async def redeliver_signals(self, recorded_before: datetime | None = None) -> int:
        """Finish the deliveries a crash cut short: signals and events logged (before
        ``recorded_before``, default now) whose waiting instances were not all woken.

        Delivering again is safe: an instance takes an entry once, and a triggered start is
        keyed by its event.  ``recover`` calls this at start-up, the SAQ reconciler on each
        pass.  Returns how many entries it delivered.
        """
        cutoff = recorded_before or self.clock.now()
        done: set[str] = set()
        while page := [e for e in await self.store.undelivered_signals(cutoff) if e.id not in done]:
            for entry in page:
                done.add(entry.id)
                try:
                    await self._deliver_entry(entry)
                except Exception:
                    # One entry that cannot be delivered (its instance keeps failing to
                    # commit) must not hold back the others; the next pass tries it again.
                    log.exception("redelivery failed", kind=entry.kind, name=entry.name)
        if done:
            log.warning("finished interrupted signal deliveries", count=len(done))
        return len(done)

    async def _deliver_entry(self, entry: SignalEntry) -> int:
        """Wake the instances waiting for the logged ``entry``, act on it, mark it delivered."""
        woken = await self._wake(entry)
        await self._after_delivery(entry)
        await self.store.mark_delivered(entry.id, self.clock.now())
        return woken

    async def _after_delivery(self, entry: SignalEntry) -> None:
        """What else a delivered entry does: nothing here; ``Engine`` starts the workflows an
        event triggers."""

    async def _wake(self, entry: SignalEntry) -> int:
        """Deliver ``entry`` to the instances that wait for it now; how many it woke."""
        if entry.instance_id is not None:
            return int(await self._wake_one(entry.instance_id, entry))
        woken = 0
        after = None
        while page := await self.store.waiting_instances(
            entry.key, tenant_id=entry.tenant_id, after=after, limit=_WAKE_PAGE
        ):
            woken += sum(await in_batches(page, lambda i: self._wake_one(i, entry), _WAKE_AT_ONCE))
            after = page[-1]
        return woken

    async def _wake_one(self, instance_id: str, entry: SignalEntry) -> bool:
        # The database says the instance waits; what this process cached of it may be older
        # (another process opened the wait since), and would miss the wait.
        state = await self._read(instance_id)
        if state is None or (token := matching_wait(state, entry)) is None:
            return False
        plan = await self._deliver(state, token.id, entry)
        if plan is None:
            return False
        await self._follow_call(plan)
        return True


def not_started(state: InstanceState, definition: WorkflowDefinition, now: datetime) -> bool:
    """Whether the instance still waits for its delayed first step (nothing ran yet)."""
    tokens = list(state.tokens.values())
    return (
        state.status in ACTIVE_WORKFLOW_STATUSES
        and len(tokens) == 1
        and tokens[0].kind == "run"
        and tokens[0].step == definition.initial_step
        and tokens[0].due_at is not None
        and tokens[0].due_at > now
    )


def event_key(definition: WorkflowDefinition, entry: SignalEntry) -> str:
    """The idempotency key of a triggered start: the definition, the event and its time."""
    assert entry.occurs_at is not None
    key = f"event:{definition.name}:{entry.name}:{entry.entity_id}:{entry.occurs_at.isoformat()}"
    return key if len(key) <= IDEMPOTENCY_KEY_LIMIT else "event:" + hashlib.sha256(key.encode()).hexdigest()


def signal_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        shown = f"{len(value)} characters" if isinstance(value, str) and value else repr(value)
        raise ValidationError(f"the {what} must be a string of 1 to 255 characters, got {shown}")
    return value


def event_entry(
    name: str,
    entity_id: str | int,
    *,
    at: datetime | None,
    payload: dict[str, Any],
    tenant_id: str | None,
    now: datetime,
) -> SignalEntry:
    """The log entry of a reported event (checked: names, a time with a time zone)."""
    if at is not None:
        aware(at, "the event's time")
    return SignalEntry(
        id=new_id(),
        kind="event",
        name=signal_name(name, "event name"),
        tenant_id=tenant_id,
        entity_id=signal_name(str(entity_id), "entity id"),
        payload=payload,
        occurs_at=at or now,
        recorded_at=now,
    )


def triggered_data(entry: SignalEntry) -> dict[str, Any]:
    """The initial data of an instance an event starts: the event, under ``_event``."""
    assert entry.occurs_at is not None
    return {
        "_event": {
            "id": entry.id,
            "name": entry.name,
            "entity_id": entry.entity_id,
            "at": entry.occurs_at.isoformat(),
            "payload": entry.payload,
        }
    }
