"""The engine's public calls: start, complete tasks, webhooks, cancel, retry, reassign.

One ``Engine`` class serves every deployment; what differs is the ports it is given (a memory
or SQL store, an inline or SAQ dispatcher, an in-memory or Redis event bus, a clock).  Each
call validates its input, changes the instance through ``_apply`` and follows what the change
activated with the activation loop of ``flowstar.engine.loop``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import structlog

from flowstar.engine.bulk import BulkOperations
from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock, SystemClock
from flowstar.engine.ids import new_id
from flowstar.engine.ports import Dispatcher, Store
from flowstar.engine.signals import (
    RESCHEDULE_WINDOW,
    EngineSignals,
    event_entry,
    event_key,
    not_started,
    triggered_data,
)
from flowstar.engine.views import WorkflowInstance, instance_view
from flowstar.model.access import User, check_admin, check_name
from flowstar.model.children import (
    PARENT_KEY,
    child_key,
    child_outcome,
    child_signal,
    children_of,
    parent_of,
    waiting_for_child,
)
from flowstar.model.commands import Fail, StartChild
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, StepType, TaskStatus
from flowstar.model.errors import (
    ConcurrencyError,
    InstanceNotFoundError,
    InvalidTransitionError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    ValidationError,
    WorkflowNotFoundError,
)
from flowstar.model.moments import aware
from flowstar.model.registry import WorkflowRegistry, default_registry
from flowstar.model.state import CommitPlan, InstanceState, SignalEntry, Token, scoped_idempotency_key
from flowstar.model.steps import BaseHumanStep
from flowstar.model.transitions import (
    StepResult,
    cancel_instance,
    resume_wait,
    retry_instance,
    start_instance,
)
from flowstar.model.waits import WebhookStep

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Engine"]

log = structlog.get_logger("flowstar.engine")

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024


class Engine(EngineSignals):
    """Runs workflow instances on the given store and dispatcher.

    Args:
        registry: where definitions are looked up; None: ``default_registry()`` (the one
            ``FLOWSTAR_REGISTRY`` names, else the process-wide default registry).
        store: state of record.
        dispatcher: runs committed activations (in this process, or as SAQ jobs).
        event_bus: receives every event after its commit.
        clock: the time source; tests pass a ``ManualClock``.
        wait_for_settle: whether calls that start work return only once the instance has
            settled in this process (the local engines) or right after the commit (SAQ).
        max_payload_bytes: limit for initial data, form data and webhook payloads.
    """

    def __init__(
        self,
        registry: WorkflowRegistry | None,
        store: Store,
        dispatcher: Dispatcher,
        *,
        event_bus: EventBus | None = None,
        clock: Clock | None = None,
        wait_for_settle: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__()
        self.registry = registry if registry is not None else default_registry()
        self.store = store
        self.dispatcher = dispatcher
        self.event_bus = event_bus
        self.clock: Clock = clock or SystemClock()
        self.wait_for_settle = wait_for_settle
        self.max_payload_bytes = max_payload_bytes
        self._known_definitions: set[tuple[str, str]] = set()
        self.commit_listeners: list[Callable[[CommitPlan], None]] = []
        self.bulk = BulkOperations(self)
        dispatcher.bind(self.run_activation)

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.recover()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def recover(self) -> int:
        """Re-dispatch every pending activation and due timer found in the store, finish the
        signal and event deliveries a crash cut short (``redeliver_signals``) and go on with
        the bulk operations nobody runs any more (``bulk.resume``).

        Call it at start-up: instances that were running when a process died resume from
        their last committed step.  Returns the number of activations dispatched.
        """
        pending = await self.store.pending_tokens()
        by_instance: dict[str, list[Token]] = {}
        for instance_id, token in pending:
            by_instance.setdefault(instance_id, []).append(token)
        for instance_id, tokens in by_instance.items():
            await self.dispatcher.dispatch(instance_id, tokens)
        if pending:
            log.info("recovered pending activations", count=len(pending))
        await self.redeliver_signals()
        await self.bulk.resume()
        return len(pending)

    async def close(self) -> None:
        """Stop the bulk operations running here and the dispatcher; close the store and bus."""
        await self.bulk.close()
        await self.dispatcher.close()
        await self.store.close()
        if self.event_bus is not None:
            await self.event_bus.close()

    # -- the public API -----------------------------------------------------------------

    async def start_workflow(
        self,
        workflow: str | type[Any] | WorkflowDefinition | None = None,
        initial_data: Mapping[str, Any] | None = None,
        version: str | None = None,
        *,
        workflow_name: str | None = None,
        input_data: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        start_at: datetime | None = None,
    ) -> WorkflowInstance:
        """Create an instance of ``workflow`` (a name, workflow class or definition).

        ``workflow_name`` and ``input_data`` are the ``ExecutionEngine`` protocol's names for
        ``workflow`` and ``initial_data``.  Returns once the instance has settled (waiting or
        finished) when the engine runs steps in-process; right after the commit otherwise.

        With an ``idempotency_key`` (unique per tenant, kept in the store): a start with a
        key used before starts nothing and returns the instance that key started, also when
        two starts race in different processes.  With ``start_at`` its first step runs at
        that time (a durable timer), not at once.

        Raises:
            TypeError: neither or both of ``workflow`` and ``workflow_name``.
            ValidationError: the data breaks the definition's ``input_schema``
                (``FormValidationError``), the key is empty or too long, ``start_at``
                has no time zone, ``metadata`` is no JSON object within the size limit, or
                ``tenant_id``/``created_by`` is no id (a non-empty string of at most 255
                characters).
        """
        workflow = _one_of("workflow", workflow, "workflow_name", workflow_name)
        definition = self.registry.resolve(workflow, version)
        if not self.registry.is_active(definition.name, definition.version) and version is None:
            raise InvalidTransitionError(f"workflow {definition.name!r} {definition.version} is deactivated")
        data = _one_of("initial_data", initial_data, "input_data", input_data, required=False) or {}
        data = self._payload(data, "initial_data")
        definition.validate_input(data)
        check_name(tenant_id, "tenant_id")
        check_name(created_by, "created_by")
        extra = self._payload(metadata or {}, "metadata")
        if start_at is not None:
            aware(start_at, "start_at")
        scoped_key = scoped_idempotency_key(tenant_id, idempotency_key)
        if scoped_key is not None and (known := await self.store.instance_for_key(scoped_key)) is not None:
            return await self._settled_view(known)
        key = (definition.name, definition.version)
        if key not in self._known_definitions:
            await self.store.ensure_definition(definition)
            self._known_definitions.add(key)
        plan = start_instance(
            definition,
            instance_id=new_id(),
            data=data,
            now=self.clock.now(),
            new_id=new_id,
            events=self.events_enabled,
            tenant_id=tenant_id,
            created_by=created_by,
            metadata=extra,
            idempotency_key=scoped_key,
            start_at=start_at,
        )
        instance_id = plan.instance.id
        if not await self._commit(plan):
            # A start with the same key committed between the look-up and this commit.
            known = await self.store.instance_for_key(scoped_key) if scoped_key is not None else None
            if known is None:
                raise ConcurrencyError(f"instance id {instance_id} collided")
            return await self._settled_view(known)
        await self._follow_call(plan)
        return await self._settled_view(instance_id)

    async def complete_human_task(
        self,
        instance_id: UUID | str,
        step_name: str,
        user_id: str,
        data: Mapping[str, Any],
    ) -> WorkflowInstance:
        """Submit the form of the open task of ``step_name`` and continue the workflow.

        Raises:
            InstanceNotFoundError: unknown instance.
            TaskNotFoundError: the instance has no open task for ``step_name``.
            TaskAlreadyCompletedError: the task was completed or canceled already.
            FormValidationError: ``data`` breaks the step's ``form_schema`` (nothing changes).
            ValidationError: ``user_id`` is no id (a non-empty string of at most 255 characters).
        """
        state = await self._load(str(instance_id))
        token = _open_token(state, "human", step=step_name)
        if token is None:
            await self._explain_missing(state, step_name, StepType.HUMAN)
        assert token is not None
        return await self._complete_task_token(state, token, user_id, data)

    async def resume_webhook(
        self, instance_id: UUID | str, step_name: str, payload: Mapping[str, Any]
    ) -> WorkflowInstance:
        """Deliver the external callback a webhook step waits for; its payload joins the context.

        Raises:
            InstanceNotFoundError, TaskNotFoundError, TaskAlreadyCompletedError: as for tasks.
            ValidationError: the payload is not a JSON object or is too large.
        """
        state = await self._load(str(instance_id))
        token = _open_token(state, "webhook", step=step_name)
        if token is None:
            await self._explain_missing(state, step_name, StepType.WEBHOOK)
        assert token is not None
        step = self._definition(state).steps[step_name]
        assert isinstance(step, WebhookStep)
        changes = step.payload_to_changes(self._payload(payload, "webhook payload"))
        return await self._resume(state, token, changes=changes, output=changes)

    async def cancel_workflow(
        self, instance_id: UUID | str, reason: str, canceled_by: str | None = None, *, user: User | None = None
    ) -> WorkflowInstance:
        """Cancel a running or waiting instance, its pending steps and its open tasks.

        With a ``user``: an admin of the instance's tenant only; ``canceled_by`` is the user.

        Returns:
            The canceled instance.

        Raises:
            InstanceNotFoundError: unknown (or another tenant's) instance.
            PermissionDeniedError: the user is no admin.
            ValidationError: ``reason`` is no string, ``canceled_by`` no id.
        """
        if not isinstance(reason, str):
            raise ValidationError(f"a cancel reason is a string, got {type(reason).__name__}")
        check_name(canceled_by, "canceled_by")
        iid = str(instance_id)
        before = await self._load(iid)
        if user is not None:
            check_admin(before, user, "cancel")
            canceled_by = user.id
        plan = await self._apply(
            iid,
            lambda d, s: cancel_instance(
                d,
                s,
                reason=reason,
                canceled_by=canceled_by,
                now=self.clock.now(),
                new_id=new_id,
                events=self.events_enabled,
            ),
            before,
        )
        for child_id in children_of(before):
            await self._cancel_child(child_id, f"its parent {iid} was canceled: {reason}", canceled_by)
        return instance_view(plan.instance)

    async def retry(
        self, instance_id: UUID | str, from_step: str | None = None, *, user: User | None = None
    ) -> WorkflowInstance:
        """Resume a failed instance from ``from_step`` (default: the step that failed).

        Raises:
            InstanceNotFoundError: unknown (or another tenant's) instance.
            PermissionDeniedError: a ``user`` who is no admin.
        """
        iid = str(instance_id)
        if user is not None:
            check_admin(await self._load(iid), user, "retry")
        plan = await self._apply(
            iid,
            lambda d, s: retry_instance(
                d, s, from_step=from_step, now=self.clock.now(), new_id=new_id, events=self.events_enabled
            ),
        )
        await self._follow_call(plan)
        return await self._settled_view(iid)

    # -- the activation loop ------------------------------------------------------------

    async def report_event(
        self,
        name: str,
        entity_id: str | int,
        *,
        at: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> str:
        """Report external event ``name`` about ``entity_id`` (happening ``at``, default now).

        It wakes the instances waiting for it (``EventStep``, ``wait_for_event``; their
        filters decide), and starts the definitions it triggers (``WorkflowDefinition.trigger``)
        at its time plus their offset (at once when that is past).  Reporting the same event
        (name, entity, time) again starts nothing more; reporting it with another time moves
        a start that has not happened yet (the earlier one is canceled).  Returns its id.

        Raises:
            ValidationError: an empty name or entity id, a time without a time zone, or a
                payload that is not a JSON object within the size limit.
        """
        check_name(tenant_id, "tenant_id")
        now = self.clock.now()
        entry = event_entry(
            name, entity_id, at=at, payload=self._payload(payload or {}, "event payload"), tenant_id=tenant_id, now=now
        )
        await self.store.record_signal(entry)
        await self._deliver_entry(entry)
        return entry.id

    async def _after_delivery(self, entry: SignalEntry) -> None:
        """Start the definitions a delivered event triggers (a repeated start finds its key)."""
        if entry.kind != "event":
            return
        triggered = [
            d for d in self.registry.list_definitions() if d.trigger is not None and d.trigger.event == entry.name
        ]
        if not triggered:
            return
        logged = await self.store.find_signals(
            "event",
            entry.name,
            tenant_id=entry.tenant_id,
            since=entry.recorded_at - RESCHEDULE_WINDOW,
            entity_id=entry.entity_id,
        )
        if any(e.recorded_at > entry.recorded_at for e in logged):
            return  # a later report moved the event (this is a redelivery): that one starts it
        earlier = [e for e in logged if e.id != entry.id]
        for definition in triggered:
            await self._start_triggered(definition, entry, earlier[-1] if earlier else None)

    async def _start_triggered(
        self, definition: WorkflowDefinition, entry: SignalEntry, earlier: SignalEntry | None
    ) -> None:
        """Start ``definition`` at the event's time plus its offset, moving an earlier pending start."""
        assert definition.trigger is not None
        assert entry.occurs_at is not None
        if earlier is not None and earlier.occurs_at != entry.occurs_at:
            await self._cancel_pending_start(definition, earlier, entry.occurs_at)
        start_at = entry.occurs_at + timedelta(seconds=definition.trigger.offset_seconds)
        await self.start_workflow(
            definition.name,
            triggered_data(entry),
            definition.version,
            tenant_id=entry.tenant_id,
            idempotency_key=event_key(definition, entry),
            start_at=start_at if start_at > self.clock.now() else None,
        )

    async def _cancel_pending_start(
        self, definition: WorkflowDefinition, earlier: SignalEntry, moved_to: datetime
    ) -> None:
        """Cancel the start an earlier time of the event scheduled, if it has not run yet."""
        key = scoped_idempotency_key(earlier.tenant_id, event_key(definition, earlier))
        known = await self.store.instance_for_key(key) if key is not None else None
        # Read from the database: another process may have run the start since this one
        # committed it, and a running instance must not be canceled.
        state = await self._read(known) if known is not None else None
        if state is None or not not_started(state, definition, self.clock.now()):
            return
        try:
            await self.cancel_workflow(state.id, f"rescheduled: the event is now at {moved_to.isoformat()}")
        except InvalidTransitionError:
            log.info("the pending start ran meanwhile", instance_id=state.id)

    # -- child workflows ----------------------------------------------------------------

    async def _start_child(self, state: InstanceState, token: Token, result: StepResult) -> StepResult:
        """Start the child the step's ``StartChild`` names; the step then commits a wait for its end.

        The start is keyed by the parent's activation: a step run again after a crash finds
        the child its first run started, and a child that ended meanwhile is delivered from
        the signal log when the wait opens.
        """
        command = result.command
        assert isinstance(command, StartChild)
        parent = {"instance_id": state.id, "step": token.step, "result_key": command.result_key}
        try:
            child = await self.start_workflow(
                command.workflow,
                command.data,
                command.version,
                tenant_id=state.tenant_id,
                created_by=state.created_by,
                metadata={PARENT_KEY: parent},
                idempotency_key=child_key(state.id, token.id),
            )
        except (WorkflowNotFoundError, InvalidTransitionError, ValidationError) as exc:
            reason = f"could not start child workflow {command.workflow!r}: {exc}"
            return msgspec.structs.replace(result, command=Fail(reason))
        return msgspec.structs.replace(result, command=waiting_for_child(command, str(child.id)))

    async def _ended(self, state: InstanceState) -> None:
        """Tell the parent of the child ``state`` that it ended (the signal it waits for)."""
        parent_id = parent_of(state)
        if parent_id is None:
            return
        try:
            await self.signal(child_signal(state.id), child_outcome(state), instance_id=parent_id)
        except ValidationError:
            # The child's data is over the payload limit: the parent still learns how it ended.
            await self.signal(child_signal(state.id), child_outcome(state, data=False), instance_id=parent_id)
        except InstanceNotFoundError:
            log.warning("the parent of an ended child is gone", instance_id=state.id, parent_id=parent_id)

    async def _cancel_child(self, child_id: str, reason: str, canceled_by: str | None) -> None:
        try:
            await self.cancel_workflow(child_id, reason, canceled_by)
        except (InvalidTransitionError, InstanceNotFoundError):
            log.info("child workflow already ended", instance_id=child_id)

    # -- internals ----------------------------------------------------------------------

    async def _complete_task_token(
        self, state: InstanceState, token: Token, user_id: str | None, data: Mapping[str, Any]
    ) -> WorkflowInstance:
        step = self._definition(state).steps[token.step]
        assert isinstance(step, BaseHumanStep)
        check_name(user_id, "user_id")
        changes = self._payload(data, "form data")
        step.validate_form(changes)
        return await self._resume(state, token, changes=changes, output=changes, completed_by=user_id)

    async def _resume(
        self,
        state: InstanceState,
        token: Token,
        *,
        changes: dict[str, Any],
        output: Any,
        completed_by: str | None = None,
    ) -> WorkflowInstance:
        """Finish the open wait ``token`` with ``changes`` and follow what it activates."""
        plan = await self._apply(
            state.id,
            lambda d, s: resume_wait(
                d,
                s,
                token.id,
                changes=changes,
                output=output,
                completed_by=completed_by,
                now=self.clock.now(),
                new_id=new_id,
                events=self.events_enabled,
            ),
            state,
        )
        await self._follow_call(plan)
        return await self._settled_view(state.id)

    async def _explain_missing(self, state: InstanceState, step_name: str, kind: StepType) -> None:
        """Raise the error that says why ``state`` has no open wait at ``step_name``."""
        definition = self._definition(state)
        step = definition.steps.get(step_name)
        if step is None:
            raise TaskNotFoundError(f"workflow {definition.name!r} has no step {step_name!r}")
        if getattr(step, "step_type", None) is not kind:
            raise InvalidTransitionError(
                f"step {step_name!r} is a {step.step_type.value} step, not a {kind.value} step"
            )
        if kind is StepType.HUMAN:
            done = await self.store.find_tasks(instance_id=state.id, step_name=step_name)
            finished = [t for t in done if t.status is not TaskStatus.PENDING]
            if finished:
                last = finished[-1]
                raise TaskAlreadyCompletedError(
                    f"task for step {step_name!r} of instance {state.id} is {last.status.value} already",
                    details={"task_id": last.id, "completed_by": last.completed_by},
                )
        elif any(h.step == step_name and h.status == "succeeded" for h in state.history):
            raise TaskAlreadyCompletedError(f"step {step_name!r} of instance {state.id} received its callback already")
        if state.status in TERMINAL_WORKFLOW_STATUSES:
            raise InvalidTransitionError(f"instance {state.id} is {state.status.value}")
        raise TaskNotFoundError(f"instance {state.id} is not waiting at step {step_name!r}")

    async def _settled_view(self, instance_id: str) -> WorkflowInstance:
        if self.wait_for_settle:
            await self.settled(instance_id)
        # Unlike ``_load``, this keeps a store's cache of what this process committed: the
        # caller gets the state its call led to (a snapshot as of the call) without a read
        # back from the database.
        state = await self.store.load_instance(instance_id)
        if state is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return instance_view(state)


_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _one_of(name: str, value: Any, alias: str, alias_value: Any, *, required: bool = True) -> Any:
    """The value of a parameter that may also be passed under the protocol's name ``alias``."""
    if value is not None and alias_value is not None:
        raise TypeError(f"give {name} or {alias}, not both")
    if value is None and alias_value is None and required:
        raise TypeError(f"missing {name} (or {alias})")
    return value if value is not None else alias_value


def _open_token(
    state: InstanceState, kind: str, *, step: str | None = None, task_id: str | None = None
) -> Token | None:
    """The open wait of ``kind`` at ``step`` (or for task ``task_id``), if the instance has one."""
    for token in state.tokens.values():
        if (
            token.kind == kind
            and (step is None or token.step == step)
            and (task_id is None or token.task_id == task_id)
        ):
            return token
    return None
