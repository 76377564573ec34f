"""The engine's activation loop: load -> run step -> transition -> commit -> publish -> next.

Every change of an instance goes through ``_apply``: build a plan with a pure transition of
``flowstar.model.transitions`` on the current state, commit it (version-checked), publish its
events.  What the plan activates goes on in ``_follow``, the activation loop: it asks the
dispatcher (``Dispatcher.may_chain``) whether to run the next activation itself, and
dispatches the others.  ``Engine`` (``core.py``) adds the public calls on top.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import structlog

from flowstar.engine.activation import STEP_RUN, ActivationRun, RunTracker
from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock
from flowstar.engine.ids import new_id
from flowstar.engine.ports import Dispatcher
from flowstar.engine.reads import EngineReads
from flowstar.engine.runner import describe_error, run_step
from flowstar.engine.views import as_uuid, definition_uuid
from flowstar.model.children import PARENT_KEY
from flowstar.model.commands import StartChild
from flowstar.model.context import json_object, step_context
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES
from flowstar.model.errors import ConcurrencyError, ContextSerializationError, TaskAlreadyCompletedError
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.signals import accepts
from flowstar.model.state import CommitPlan, InstanceState, SignalEntry, Token
from flowstar.model.task_transitions import escalate_task
from flowstar.model.transitions import (
    StaleTokenError,
    StepResult,
    apply_step_result,
    deliver_signal,
    last_actor,
    resume_wait,
)

__all__ = ["MAX_COMMIT_CONFLICTS", "Build", "EngineLoop"]

log = structlog.get_logger("flowstar.engine")

# Optimistic commits retry this often when parallel branches of one instance collide.
MAX_COMMIT_CONFLICTS = 50
_LOCK_STRIPES = 64
# A run of steps that never suspend yields to the event loop this often.
_YIELD_EVERY = 32

Build = Callable[[WorkflowDefinition, InstanceState], CommitPlan]


class EngineLoop(EngineReads):
    """The write path of ``Engine`` (its base class): the activation loop and ``_apply``."""

    registry: WorkflowRegistry
    dispatcher: Dispatcher
    event_bus: EventBus | None
    clock: Clock
    commit_listeners: list[Callable[[CommitPlan], None]]
    max_payload_bytes: int
    # Told each ``store.commit``'s duration in seconds and whether it committed (the
    # metrics' commit latency); None, the default, times nothing.
    commit_timer: Callable[[float, bool], None] | None = None

    def __init__(self) -> None:
        super().__init__()
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self._runs = RunTracker()

    @property
    def events_enabled(self) -> bool:
        """Whether transitions build events: only when a bus or an outbox will carry them."""
        return self.event_bus is not None or self.store.outbox

    async def settled(self, instance_id: UUID | str) -> None:
        """Return once nothing of the instance runs in this process (no step, no chain)."""
        iid = str(instance_id)
        while True:
            await self.dispatcher.settled(iid)
            if not self._runs.active(iid):
                return
            await self._runs.idle(iid)

    async def run_activation(self, instance_id: str, token_id: str, run: ActivationRun | None = None) -> None:
        """Execute one committed activation (a step body, or a due timer), then what follows.

        Safe to call more than once for the same token: only the first outcome commits,
        later ones find the token consumed and return.  ``run`` is the dispatcher's record
        of this run (see ``ActivationRun``); the loop goes on with the next activation
        itself while ``Dispatcher.may_chain`` allows it.
        """
        # The database decides whether the activation still needs work, not what this process
        # cached: another process may have run it, or canceled the instance, since.  (A run
        # this loop chains goes on from its own commit and reads nothing.)
        state = await self._read(instance_id)
        token = state.tokens.get(token_id) if state is not None else None
        if state is None or token is None:
            log.debug("activation no longer pending", instance_id=instance_id, token_id=token_id)
            return
        if token.due_at is not None and token.due_at > self.clock.now():
            # Dispatchers may deliver a little early (SAQ schedules in whole seconds).
            await self.clock.sleep_until(token.due_at)
        run = run or ActivationRun(instance_id)
        self._runs.enter(instance_id)
        try:
            scope = self._scope(state)
            plan = await self._activate(scope, state, token, run)
            if plan is not None:
                await self._follow(plan, run, scope)
        finally:
            self._runs.leave(instance_id)

    async def _follow(self, plan: CommitPlan, run: ActivationRun, scope: _RunScope) -> None:
        """Dispatch what ``plan`` activated, executing one next activation here while allowed.

        A plan that opened signal or event waits first looks for one that came before the
        wait began (``_early_arrival``): it is delivered, and the loop goes on from there.
        """
        while True:
            if plan.waits:
                if plan.dispatch:
                    await self.dispatcher.dispatch(plan.instance.id, list(plan.dispatch))
                arrived = await self._early_arrival(plan, scope)
                if arrived is None:
                    return
                plan = arrived
                continue
            tokens = plan.dispatch
            if not tokens:
                return
            keep = _chainable(tokens)
            if keep is not None and not await self.dispatcher.may_chain(run, keep):
                keep = None
            if keep is None or len(tokens) > 1:
                await self.dispatcher.dispatch(plan.instance.id, [t for t in tokens if t is not keep])
            if keep is None:
                return
            following = await self._activate(scope, plan.instance, keep, run)
            if following is None:
                return
            plan = following
            if run.steps % _YIELD_EVERY == 0:
                # A long run of steps that never suspend must not starve other instances.
                await asyncio.sleep(0)

    async def _follow_call(self, plan: CommitPlan) -> None:
        """``_follow`` for a call from outside: its own commit stands whatever follows fails."""
        instance_id = plan.instance.id
        self._runs.enter(instance_id)
        try:
            await self._follow(plan, ActivationRun(instance_id), self._scope(plan.instance))
        except Exception:
            # The call's change is committed; the activation left pending is found again by
            # recovery (and the reconciler where one runs).
            log.exception("activation crashed", instance_id=instance_id)
        finally:
            self._runs.leave(instance_id)

    async def _early_arrival(self, plan: CommitPlan, scope: _RunScope) -> CommitPlan | None:
        """Deliver a logged signal or event that one of the plan's new waits accepts, if any.

        Signals are logged before they look for waiting instances, and waits are committed
        before they look in the log: whichever comes second finds the other, so no wake-up
        is lost; a second delivery finds the wait gone and changes nothing.
        """
        state = plan.instance
        for token in plan.waits:
            wait = token.wait
            assert wait is not None
            assert wait.name is not None
            since = wait.since or state.started_at
            for entry in await self.store.find_signals(token.kind, wait.name, tenant_id=state.tenant_id, since=since):
                if accepts(state, token, entry):
                    return await self._deliver(state, token.id, entry, scope.definition)
        return None

    async def _deliver(
        self, state: InstanceState, token_id: str, entry: SignalEntry, definition: WorkflowDefinition | None = None
    ) -> CommitPlan | None:
        """End the wait ``token_id`` of ``state`` with ``entry``; None if it had ended already.

        The plan is built on ``state`` as the caller read it: if another commit came first,
        the version check refuses it and ``_apply`` builds again on a fresh load.
        """
        now = self.clock.now()
        events = self.events_enabled
        try:
            return await self._apply(
                state.id,
                lambda d, s: deliver_signal(d, s, token_id, entry, now=now, new_id=new_id, events=events),
                state,
                definition,
            )
        except TaskAlreadyCompletedError:
            return None

    def _payload(self, payload: Mapping[str, Any], what: str) -> dict[str, Any]:
        """A mapping entering through the API as JSON data, within the size limit (see ``json_object``)."""
        return json_object(payload, what, self.max_payload_bytes)

    def _scope(self, state: InstanceState) -> _RunScope:
        definition = self._definition(state)
        return _RunScope(
            definition=definition,
            events=self.events_enabled,
            workflow_uuid=definition_uuid(definition.name, definition.version),
            instance_uuid=as_uuid(state.id),
            # Only a completed wait changes who acts, and that starts a run of its own.
            actor=last_actor(state),
        )

    async def _activate(
        self, scope: _RunScope, state: InstanceState, token: Token, run: ActivationRun
    ) -> CommitPlan | None:
        """Execute ``token`` on ``state`` and commit its outcome; None if it was consumed elsewhere."""
        run.current = token
        run.steps += 1
        token_id = token.id
        events = scope.events
        definition = scope.definition
        try:
            if token.kind == "timer":
                now = self.clock.now()
                return await self._apply(
                    state.id,
                    lambda d, s: resume_wait(d, s, token_id, changes={}, now=now, new_id=new_id, events=events),
                    state,
                    definition,
                )
            if token.kind == "escalation":
                return await self._escalate(state, token, events, definition)
            # The data is a deep copy (a JSON round trip): a step mutating nested values in
            # place changes nothing until its commit.
            context = step_context(
                scope.workflow_uuid,
                scope.instance_uuid,
                _copy(state.data),
                state.metadata,
                token.step,
                state.started_at,
                scope.actor,
                state.tenant_id,
                workflow_name=definition.name,
                history=state.history,
            )
            step = definition.steps[token.step]
            # Every line the step logs (the user's own structlog calls too) names its run:
            # one context variable, read by flowstar.logs.add_step_run.
            names_run = STEP_RUN.set(
                (state.id, definition.name, definition.version, token.step, token_id, token.attempt)
            )
            try:
                result = await run_step(
                    step,
                    context,
                    attempt=token.attempt,
                    policy=definition.retry_policy,
                    now=self.clock.now,
                    activation_id=token_id,
                    version=definition.version,
                )
            finally:
                STEP_RUN.reset(names_run)
            if type(result.command) is StartChild:
                result = await self._start_child(state, token, result)
            try:
                return await self._commit_result(scope, state, token_id, result)
            except ContextSerializationError as exc:
                # The store refused what the step wrote (PostgreSQL cannot hold a NUL character,
                # for one): fail the step with that error rather than leave it pending forever.
                failed = StepResult(
                    status="failed",
                    started_at=result.started_at,
                    finished_at=self.clock.now(),
                    error=describe_error(exc),
                )
                return await self._apply(state.id, _outcome(token_id, failed, events), None, definition)
        except (StaleTokenError, TaskAlreadyCompletedError):
            log.info("activation was consumed elsewhere", instance_id=state.id, step=token.step)
            return None

    async def _escalate(
        self, state: InstanceState, token: Token, events: bool, definition: WorkflowDefinition
    ) -> CommitPlan:
        """Fire a task's due escalation timer (the task is read for whom it concerns)."""
        task = await self.store.get_task(token.task_id) if token.task_id is not None else None
        now = self.clock.now()
        return await self._apply(
            state.id,
            lambda d, s: escalate_task(d, s, token.id, task, now=now, new_id=new_id, events=events),
            state,
            definition,
        )

    async def _commit_result(
        self, scope: _RunScope, state: InstanceState, token_id: str, result: StepResult
    ) -> CommitPlan:
        """Commit a step's outcome: built on the state at hand, rebuilt by ``_apply`` after a conflict."""
        # The step's end is the transition's time: nothing happened in between.
        plan = apply_step_result(
            scope.definition, state, token_id, result, now=result.finished_at, new_id=new_id, events=scope.events
        )
        if await self._commit(plan):
            return plan
        return await self._apply(state.id, _outcome(token_id, result, scope.events), None, scope.definition)

    async def _start_child(self, state: InstanceState, token: Token, result: StepResult) -> StepResult:
        """Start the child workflow the step's ``StartChild`` names, before the step's commit:
        nothing here; ``Engine`` does it."""
        return result

    async def _ended(self, state: InstanceState) -> None:
        """Called after a commit that ended an instance: nothing here; ``Engine`` tells the
        parent of a child workflow."""

    def _definition(self, state: InstanceState) -> WorkflowDefinition:
        return self.registry.get_definition(state.workflow_name, state.workflow_version)

    async def _apply(
        self,
        instance_id: str,
        build: Build,
        state: InstanceState | None = None,
        definition: WorkflowDefinition | None = None,
    ) -> CommitPlan:
        """Build a plan on the instance's state and commit it; rebuild on a newer state after a conflict.

        ``state`` is the state to build on first (None: load it); ``definition`` the
        instance's definition, when the caller has it at hand.
        """
        for _ in range(MAX_COMMIT_CONFLICTS):
            current = state if state is not None else await self._load(instance_id)
            plan = build(definition or self._definition(current), current)
            if await self._commit(plan):
                return plan
            state = None
        raise ConcurrencyError(f"instance {instance_id} kept changing; gave up after {MAX_COMMIT_CONFLICTS} tries")

    async def _commit(self, plan: CommitPlan) -> bool:
        """Commit ``plan`` and publish its events; False if another commit got there first."""
        if plan.events and self.event_bus is not None:
            # Holding the stripe lock over commit and publish keeps one instance's events in
            # commit order within this process.
            async with self._locks[hash(plan.instance.id) % _LOCK_STRIPES]:
                if not await self._store_commit(plan):
                    return False
                await self._publish(plan)
        elif not await self._store_commit(plan):
            return False
        if self._watchers:
            self._notify_status(plan.instance.id, plan.instance.status)
        if plan.instance.status in TERMINAL_WORKFLOW_STATUSES and PARENT_KEY in plan.instance.metadata:
            await self._ended(plan.instance)
        for listener in self.commit_listeners:
            listener(plan)
        return True

    def _store_commit(self, plan: CommitPlan) -> Awaitable[bool]:
        """``store.commit(plan)``, timed only when a ``commit_timer`` is set (no extra await
        on the hot path otherwise)."""
        timer = self.commit_timer
        if timer is None:
            return self.store.commit(plan)
        return _timed(self.store.commit(plan), timer)

    async def _publish(self, plan: CommitPlan) -> None:
        assert self.event_bus is not None
        for event in plan.events:
            try:
                await self.event_bus.emit(event)
            except Exception:
                log.exception("event bus failed", event_type=event.type, instance_id=plan.instance.id)


_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(slots=True)
class _RunScope:
    """What stays the same over one run of the activation loop for one instance.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, and a
    scope is made for every run.
    """

    definition: WorkflowDefinition
    events: bool
    workflow_uuid: UUID
    instance_uuid: UUID
    actor: str | None


async def _timed(commit: Awaitable[bool], timer: Callable[[float, bool], None]) -> bool:
    """Await ``commit`` and tell ``timer`` how long it took (a commit that raises is not timed)."""
    began = time.perf_counter()
    committed = await commit
    timer(time.perf_counter() - began, committed)
    return committed


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (a JSON round trip is the fastest one)."""
    copied: dict[str, Any] = _decode(_encode(data))
    return copied


def _outcome(token_id: str, result: StepResult, events: bool) -> Build:
    """The transition that commits ``result`` for the activation ``token_id``."""
    return lambda d, s: apply_step_result(d, s, token_id, result, now=result.finished_at, new_id=new_id, events=events)


def _chainable(tokens: Sequence[Token]) -> Token | None:
    """The first activation of ``tokens`` due now: the one a run may execute next itself."""
    for token in tokens:
        if token.kind == "run" and token.due_at is None:
            return token
    return None
