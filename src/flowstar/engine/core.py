"""The engine: load -> run step -> transition -> commit -> dispatch -> publish.

One ``Engine`` class serves every deployment; what differs is the ports it is given (a memory
or SQL store, an inline or SAQ dispatcher, an in-memory or Redis event bus, a clock).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog

from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock, SystemClock
from flowstar.engine.ids import new_id
from flowstar.engine.ports import Dispatcher, Store
from flowstar.engine.runner import describe_error, failure, is_plain, output_of, run_step
from flowstar.engine.views import WorkflowInstance, as_uuid, definition_uuid, instance_view
from flowstar.model.context import WorkflowContext, step_context, to_json_value
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, StepType, TaskStatus, WorkflowStatus
from flowstar.model.errors import (
    ConcurrencyError,
    ContextSerializationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StepExecutionError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    ValidationError,
)
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, StepRecord, Token
from flowstar.model.steps import BaseHumanStep, Step
from flowstar.model.transitions import (
    StaleTokenError,
    StepResult,
    apply_step_result,
    apply_success,
    cancel_instance,
    reassign_task,
    resume_wait,
    retry_instance,
    start_instance,
)
from flowstar.model.waits import WebhookStep

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Engine"]

log = structlog.get_logger("flowstar.engine")

_encode = msgspec.json.encode
_decode = msgspec.json.decode

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
# Optimistic commits retry this often when parallel branches of one instance collide.
MAX_COMMIT_CONFLICTS = 50
_LOCK_STRIPES = 64
# A chain of steps run back to back yields to the event loop this often.
_YIELD_EVERY = 32

Build = Callable[[WorkflowDefinition, InstanceState], CommitPlan]


class Engine:
    """Runs workflow instances on the given store and dispatcher.

    Args:
        registry: where definitions are looked up.
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
        registry: WorkflowRegistry,
        store: Store,
        dispatcher: Dispatcher,
        *,
        event_bus: EventBus | None = None,
        clock: Clock | None = None,
        wait_for_settle: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.registry = registry
        self.store = store
        self.dispatcher = dispatcher
        self.event_bus = event_bus
        self.clock: Clock = clock or SystemClock()
        self.wait_for_settle = wait_for_settle
        self.max_payload_bytes = max_payload_bytes
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self._known_definitions: set[tuple[str, str]] = set()
        self.commit_listeners: list[Callable[[CommitPlan], None]] = []
        # Per step object: whether ``run_step`` may take its short path (see ``is_plain``).
        self._plain: dict[Step, bool] = {}
        self._forget: Callable[[str], None] | None = getattr(store, "forget", None)
        self._watchers: dict[str, list[tuple[frozenset[WorkflowStatus], asyncio.Future[None]]]] = {}
        dispatcher.bind(self.run_activation)

    @property
    def events_enabled(self) -> bool:
        """Whether transitions build events: only when a bus or an outbox will carry them."""
        return self.event_bus is not None or bool(getattr(self.store, "outbox", False))

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.recover()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def recover(self) -> int:
        """Re-dispatch every pending activation and due timer found in the store.

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
        return len(pending)

    async def close(self) -> None:
        """Stop the dispatcher and close the store and bus."""
        await self.dispatcher.close()
        await self.store.close()
        if self.event_bus is not None:
            await self.event_bus.close()

    # -- the public API -----------------------------------------------------------------

    async def start_workflow(
        self,
        workflow: str | type[Any] | WorkflowDefinition,
        initial_data: Mapping[str, Any] | None = None,
        version: str | None = None,
        *,
        tenant_id: str | None = None,
        created_by: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> WorkflowInstance:
        """Create an instance of ``workflow`` (a name, workflow class or definition).

        Returns once the instance has settled (waiting or finished) when the engine runs
        steps in-process; right after the commit otherwise.
        """
        definition = self.registry.resolve(workflow, version)
        if not self.registry.is_active(definition.name, definition.version) and version is None:
            raise InvalidTransitionError(f"workflow {definition.name!r} {definition.version} is deactivated")
        data = self._payload(initial_data or {}, "initial_data")
        key = (definition.name, definition.version)
        if key not in self._known_definitions:
            await self.store.ensure_definition(definition)
            self._known_definitions.add(key)
        now = self.clock.now()
        events = self.events_enabled
        plan = start_instance(
            definition,
            instance_id=new_id(),
            data=data,
            now=now,
            new_id=new_id,
            events=events,
            tenant_id=tenant_id,
            created_by=created_by,
            metadata=dict(metadata or {}),
        )
        instance_id = plan.instance.id
        async with self.dispatcher.driving(instance_id):
            first = plan.dispatch[0] if len(plan.dispatch) == 1 else None
            if first is not None and first.due_at is None and self.dispatcher.may_chain(instance_id):
                # The dispatcher would run the first step in this task anyway: run it (and the
                # steps it chains) on the state just committed.
                if plan.events and self.event_bus is not None:
                    committed = await self._commit(plan, dispatch=())
                elif committed := await self.store.commit(plan):
                    self._committed(plan)
                if not committed:
                    raise ConcurrencyError(f"instance id {instance_id} collided")
                try:
                    await self._run_chain(definition, plan.instance, first, now, chain=True, events=events)
                except Exception:
                    log.exception("activation crashed", instance_id=instance_id, token_id=first.id)
            elif not await self._commit(plan):
                raise ConcurrencyError(f"instance id {instance_id} collided")
        return await self._settled_view(instance_id)

    async def get_instance(self, instance_id: UUID | str) -> WorkflowInstance:
        """The instance's current state.

        Raises:
            InstanceNotFoundError: (a ``KeyError``) no such instance.
        """
        return instance_view(await self._load(str(instance_id)))

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
        """
        iid = str(instance_id)
        state = await self._load(iid)
        token = self._open_token(state, "human", step=step_name)
        if token is None:
            await self._explain_missing(state, step_name, StepType.HUMAN)
        assert token is not None
        return await self._complete_task_token(state, token, user_id, data)

    async def complete_task(self, task_id: UUID | str, user_id: str, data: Mapping[str, Any]) -> WorkflowInstance:
        """Like ``complete_human_task``, addressing the task by its id."""
        task = await self.get_task(task_id)
        state = await self._load(task.instance_id)
        token = self._open_token(state, "human", task_id=task.id)
        if token is None:
            raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value}")
        return await self._complete_task_token(state, token, user_id, data)

    async def resume_webhook(
        self, instance_id: UUID | str, step_name: str, payload: Mapping[str, Any]
    ) -> WorkflowInstance:
        """Deliver the external callback a webhook step waits for; its payload joins the context.

        Raises:
            InstanceNotFoundError, TaskNotFoundError, TaskAlreadyCompletedError: as for tasks.
            ValidationError: the payload is not a JSON object or is too large.
        """
        iid = str(instance_id)
        state = await self._load(iid)
        token = self._open_token(state, "webhook", step=step_name)
        if token is None:
            await self._explain_missing(state, step_name, StepType.WEBHOOK)
        assert token is not None
        step = self._definition(state).steps[step_name]
        assert isinstance(step, WebhookStep)
        changes = step.payload_to_changes(self._payload(payload, "webhook payload"))
        async with self.dispatcher.driving(iid):
            await self._apply(
                iid,
                lambda d, s: resume_wait(
                    d,
                    s,
                    token.id,
                    changes=changes,
                    output=changes,
                    now=self.clock.now(),
                    new_id=new_id,
                    events=self.events_enabled,
                ),
                state,
            )
        return await self._settled_view(iid)

    async def cancel_workflow(self, instance_id: UUID | str, reason: str, canceled_by: str | None = None) -> None:
        """Cancel a running or waiting instance, its pending steps and its open tasks."""
        iid = str(instance_id)
        await self._apply(
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
        )

    async def retry(self, instance_id: UUID | str, from_step: str | None = None) -> WorkflowInstance:
        """Resume a failed instance from ``from_step`` (default: the step that failed)."""
        iid = str(instance_id)
        async with self.dispatcher.driving(iid):
            await self._apply(
                iid,
                lambda d, s: retry_instance(
                    d, s, from_step=from_step, now=self.clock.now(), new_id=new_id, events=self.events_enabled
                ),
            )
        return await self._settled_view(iid)

    async def reassign_task(
        self,
        task_id: UUID | str,
        assignee_id: str | None,
        *,
        assignee_group: str | None = None,
        reassigned_by: str | None = None,
    ) -> HumanTask:
        """Give an open task to another user (and/or group)."""
        task = await self.get_task(task_id)
        await self._apply(
            task.instance_id,
            lambda d, s: reassign_task(
                d,
                s,
                task,
                assignee_id=assignee_id,
                assignee_group=assignee_group,
                reassigned_by=reassigned_by,
                now=self.clock.now(),
                new_id=new_id,
                events=self.events_enabled,
            ),
        )
        return await self.get_task(task_id)

    async def get_task(self, task_id: UUID | str) -> HumanTask:
        """One task by id.

        Raises:
            TaskNotFoundError: unknown id.
        """
        task = await self.store.get_task(str(task_id))
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id}")
        return task

    async def get_tasks(
        self,
        *,
        instance_id: UUID | str | None = None,
        status: TaskStatus | None = TaskStatus.PENDING,
        assignee_id: str | None = None,
        assignee_group: str | None = None,
        tenant_id: str | None = None,
    ) -> list[HumanTask]:
        """Tasks matching the filters (pending ones by default)."""
        return await self.store.find_tasks(
            instance_id=str(instance_id) if instance_id is not None else None,
            status=status,
            assignee_id=assignee_id,
            assignee_group=assignee_group,
            tenant_id=tenant_id,
        )

    async def get_history(self, instance_id: UUID | str) -> list[StepRecord]:
        """Every step execution of the instance, in order."""
        return await self.store.step_records(str(instance_id))

    async def list_instances(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[WorkflowInstance], int]:
        """A page of instances and the total count."""
        states, total = await self.store.find_instances(
            workflow_name=workflow_name,
            status=status,
            tenant_id=tenant_id,
            created_by=created_by,
            limit=limit,
            offset=offset,
        )
        return [instance_view(s) for s in states], total

    async def execute_step(self, step: Step, context: WorkflowContext, previous_result: Any = None) -> Any:
        """Run one step outside any workflow (guards and hooks included).

        Raises:
            StepExecutionError: the step raised; the original error is its ``__cause__``.
        """
        if not await step.can_execute(context):
            return previous_result
        try:
            result = await step.execute(context)
        except Exception as exc:
            await step.on_failure(context, exc)
            raise StepExecutionError(f"step {step.name!r} failed: {describe_error(exc)}") from exc
        await step.on_success(context, result)
        return result

    async def wait_for_status(
        self,
        instance_id: UUID | str,
        statuses: WorkflowStatus | Iterable[WorkflowStatus] = TERMINAL_WORKFLOW_STATUSES,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - part of the public helper's signature
        poll_interval: float = 0.5,
    ) -> WorkflowInstance:
        """Return the instance once it reaches one of ``statuses``.

        Commits made by this engine wake the waiter at once; commits made by other
        processes are noticed within ``poll_interval``.

        Raises:
            TimeoutError: the status was not reached within ``timeout`` seconds.
        """
        iid = str(instance_id)
        wanted = frozenset([statuses] if isinstance(statuses, WorkflowStatus) else statuses)
        await self._watching()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._watchers.setdefault(iid, []).append(entry)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    state = await self._load(iid)
                    if state.status in wanted:
                        return instance_view(state)
                    try:
                        await asyncio.wait_for(asyncio.shield(future), poll_interval)
                    except TimeoutError:
                        continue
        except TimeoutError:
            state = await self._load(iid)
            raise TimeoutError(
                f"instance {iid} is {state.status.value}, not {sorted(s.value for s in wanted)}, after {timeout}s"
            ) from None
        finally:
            watchers = self._watchers.get(iid, [])
            if entry in watchers:
                watchers.remove(entry)
            if not watchers:
                self._watchers.pop(iid, None)

    async def _watching(self) -> None:
        """Hook for engines that learn about other processes' commits (SAQ: pub/sub)."""

    # -- executing activations ----------------------------------------------------------

    async def run_activation(self, instance_id: str, token_id: str) -> None:
        """Execute one committed activation: a step body, or a due timer.

        Safe to call more than once for the same token: only the first outcome commits,
        later ones find the token consumed and return.  When the dispatcher allows it, the
        next activation a step's commit creates (a straight route) runs right here, on the
        state just committed, instead of going through the dispatcher and the store again.
        """
        state = await self.store.load_instance(instance_id)
        token = state.tokens.get(token_id) if state is not None else None
        if token is None and self._forget is not None:
            # The state may come from this process's cache while another process committed
            # the activation's creation: look again in the database before giving up.
            self._forget(instance_id)
            state = await self.store.load_instance(instance_id)
            token = state.tokens.get(token_id) if state is not None else None
        if state is None or token is None:
            log.debug("activation no longer pending", instance_id=instance_id, token_id=token_id)
            return
        if token.due_at is not None and token.due_at > self.clock.now():
            # Dispatchers may deliver a little early (SAQ schedules in whole seconds).
            await self.clock.sleep_until(token.due_at)
        if token.kind == "timer":
            await self._resume_timer(state, token_id)
            return
        await self._run_chain(self._definition(state), state, token)

    async def _resume_timer(self, state: InstanceState, token_id: str) -> None:
        """Commit a due timer's end; the steps after it run as usual."""
        try:
            await self._apply(
                state.id,
                lambda d, s: resume_wait(
                    d, s, token_id, changes={}, now=self.clock.now(), new_id=new_id, events=self.events_enabled
                ),
                state,
            )
        except (StaleTokenError, TaskAlreadyCompletedError):
            log.info("activation was consumed elsewhere", instance_id=state.id, token_id=token_id)

    async def _run_chain(  # noqa: PLR0912, PLR0915 - see the docstring's last paragraph
        self,
        definition: WorkflowDefinition,
        state: InstanceState,
        token: Token,
        now: datetime | None = None,
        *,
        chain: bool | None = None,
        events: bool | None = None,
    ) -> None:
        """Run the ``run`` token ``token`` on ``state`` and commit its outcome; then, while the
        dispatcher allows it (``Dispatcher.may_chain``, passed as ``chain`` when the caller
        knows it), run the single next activation due now right here, on the state just
        committed, without dispatching it.

        This loop is the engine's innermost, written as one coroutine for the whole chain (a
        coroutine per step cost 8% of a step) and for few interpreter instructions per step;
        it reads the clock once per step: a step starts when the one before it finished, the
        first one at ``now`` if given (the time its activation was committed).
        """
        instance_id = state.id
        if chain is None:
            chain = self.dispatcher.may_chain(instance_id)
        if events is None:
            events = self.events_enabled
        publish = self.event_bus is not None
        commit = self.store.commit
        clock_now = self.clock.now
        steps = definition.steps
        plains = self._plain
        workflow_uuid = definition_uuid(definition.name, definition.version)
        instance_uuid = as_uuid(instance_id)
        now = clock_now() if now is None else now
        chained = 0
        while True:
            token_id = token.id
            step = steps[token.step]
            # The data is a deep copy: a step mutating nested values in place changes nothing
            # until its commit.
            context = step_context(
                workflow_uuid,
                instance_uuid,
                _decode(_encode(state.data)),
                state.metadata,
                token.step,
                state.started_at,
                state.created_by,
                state.tenant_id,
            )
            started = now
            plan: CommitPlan | None = None
            result: StepResult | None = None
            try:
                plain = plains[step]
            except (KeyError, TypeError):
                plain = self._is_plain(step)
            if plain:
                # ``run_step`` for a plain step, written out: the common case saves a coroutine.
                try:
                    value = await step.execute(context)
                    output = None if value is None else output_of(step, value)
                except Exception as exc:
                    result = await failure(
                        step,
                        context,
                        exc,
                        attempt=token.attempt,
                        policy=definition.retry_policy,
                        started=started,
                        now=clock_now,
                    )
                else:
                    now = clock_now()
                    plan = apply_success(
                        definition,
                        state,
                        token_id,
                        changes=context.changes,
                        output=output,
                        started_at=started,
                        now=now,
                        new_id=new_id,
                        events=events,
                    )
                    if plan is None:
                        result = _succeeded(started, now, context.changes, output)
            else:
                result = await run_step(
                    step, context, attempt=token.attempt, policy=definition.retry_policy, now=clock_now
                )
            try:
                # The plan builds on the state at hand; a conflict (another commit got in
                # between) rebuilds it on a fresh one.  The step's end is the transition's
                # time: nothing happened in between.
                if plan is None:
                    assert result is not None
                    plan = apply_step_result(
                        definition, state, token_id, result, now=result.finished_at, new_id=new_id, events=events
                    )
                dispatch = plan.dispatch
                # The single next activation due now, which this task runs itself.
                keep = dispatch[0] if chain and len(dispatch) == 1 and dispatch[0].due_at is None else None
                if (keep is not None or not dispatch) and not (publish and plan.events):
                    # Nothing to dispatch or publish: ``_commit`` without its coroutine.
                    committed = await commit(plan)
                    if committed and (self._watchers or self.commit_listeners):
                        self._committed(plan)
                else:
                    committed = await self._commit(plan, dispatch=() if keep is not None else None)
                if not committed:
                    await self._rebuild(
                        instance_id, token_id, result or _succeeded(started, now, context.changes, output)
                    )
                    return
            except ContextSerializationError as exc:
                # The store refused what the step wrote (PostgreSQL cannot hold a NUL character,
                # for one): fail the step with that error rather than leave it pending forever.
                failed = StepResult(
                    status="failed", started_at=started, finished_at=clock_now(), error=describe_error(exc)
                )
                await self._rebuild(instance_id, token_id, failed)
                return
            except (StaleTokenError, TaskAlreadyCompletedError):
                log.info("activation was consumed elsewhere", instance_id=instance_id, step=token.step)
                return
            if keep is None:
                return
            state, token = plan.instance, keep
            chained += 1
            if chained % _YIELD_EVERY == 0:
                # A long chain of steps that never suspend must not starve other instances.
                await asyncio.sleep(0)
                now = clock_now()
            elif result is not None:
                now = clock_now()  # (the step was timed elsewhere)

    def _is_plain(self, step: Step) -> bool:
        """``is_plain(step)``, remembered per step object (unhashable ones are decided anew)."""
        plain = is_plain(step)
        with contextlib.suppress(TypeError):
            self._plain[step] = plain
        return plain

    async def _rebuild(self, instance_id: str, token_id: str, result: StepResult) -> None:
        """Commit a step's outcome on the instance's latest state (after a conflict)."""
        try:
            await self._apply(
                instance_id,
                lambda d, s: apply_step_result(
                    d, s, token_id, result, now=self.clock.now(), new_id=new_id, events=self.events_enabled
                ),
            )
        except (StaleTokenError, TaskAlreadyCompletedError):
            log.info("activation was consumed elsewhere", instance_id=instance_id, token_id=token_id)

    # -- internals ----------------------------------------------------------------------

    def _definition(self, state: InstanceState) -> WorkflowDefinition:
        return self.registry.get_definition(state.workflow_name, state.workflow_version)

    async def _load(self, instance_id: str) -> InstanceState:
        # Calls from outside (API, other processes' work) must see the latest commit, not a
        # state this process cached when it last committed.
        if self._forget is not None:
            self._forget(instance_id)
        try:
            state = await self.store.load_instance(instance_id)
        except ValueError as exc:  # a malformed id
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}") from exc
        if state is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return state

    def _payload(self, payload: Mapping[str, Any], what: str) -> dict[str, Any]:
        if type(payload) is not dict and not isinstance(payload, Mapping):  # (an ABC check is slow)
            raise ValidationError(f"{what} must be a JSON object, got {type(payload).__name__}")
        for key in payload:
            if not isinstance(key, str):
                raise ContextSerializationError(f"{what}: keys must be strings, got {key!r}")
        if not payload:
            return {}
        try:
            # One JSON round trip of the whole mapping normalises every value exactly as
            # ``to_json_value`` does one by one, and its length is the payload's size.
            encoded = msgspec.json.encode(payload)
            converted: dict[str, Any] = msgspec.json.decode(encoded)
        except (TypeError, msgspec.EncodeError, ValueError):
            # Find the offending key and report it the way a step's ``context.set`` would.
            converted = {key: to_json_value(key, value) for key, value in payload.items()}
            encoded = msgspec.json.encode(converted)
        if self.max_payload_bytes:
            size = len(encoded)
            if size > self.max_payload_bytes:
                raise ValidationError(f"{what} is {size} bytes; the limit is {self.max_payload_bytes}")
        return converted

    @staticmethod
    def _open_token(
        state: InstanceState, kind: str, *, step: str | None = None, task_id: str | None = None
    ) -> Token | None:
        for token in state.tokens.values():
            if (
                token.kind == kind
                and (step is None or token.step == step)
                and (task_id is None or token.task_id == task_id)
            ):
                return token
        return None

    async def _complete_task_token(
        self, state: InstanceState, token: Token, user_id: str, data: Mapping[str, Any]
    ) -> WorkflowInstance:
        step = self._definition(state).steps[token.step]
        assert isinstance(step, BaseHumanStep)
        changes = self._payload(data, "form data")
        step.validate_form(changes)
        async with self.dispatcher.driving(state.id):
            await self._apply(
                state.id,
                lambda d, s: resume_wait(
                    d,
                    s,
                    token.id,
                    changes=changes,
                    output=changes,
                    completed_by=user_id,
                    now=self.clock.now(),
                    new_id=new_id,
                    events=self.events_enabled,
                ),
                state,
            )
        return await self._settled_view(state.id)

    async def _explain_missing(self, state: InstanceState, step_name: str, kind: StepType) -> None:
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

    async def _apply(self, instance_id: str, build: Build, state: InstanceState | None = None) -> CommitPlan:
        for _ in range(MAX_COMMIT_CONFLICTS):
            current = state if state is not None else await self._load(instance_id)
            plan = build(self._definition(current), current)
            if await self._commit(plan):
                return plan
            state = None
        raise ConcurrencyError(f"instance {instance_id} kept changing; gave up after {MAX_COMMIT_CONFLICTS} tries")

    async def _commit(self, plan: CommitPlan, dispatch: Sequence[Token] | None = None) -> bool:
        """Commit ``plan``, then dispatch ``dispatch`` (default: the plan's tokens) and publish."""
        instance_id = plan.instance.id
        # Holding the stripe lock over commit and publish keeps one instance's events in
        # commit order within this process.
        if plan.events and self.event_bus is not None:
            async with self._locks[hash(instance_id) % _LOCK_STRIPES]:
                if not await self.store.commit(plan):
                    return False
                await self._publish(plan)
        elif not await self.store.commit(plan):
            return False
        tokens = plan.dispatch if dispatch is None else dispatch
        if tokens:
            await self.dispatcher.dispatch(instance_id, tokens)
        self._committed(plan)
        return True

    def _committed(self, plan: CommitPlan) -> None:
        """Tell this engine's waiters and listeners about a commit."""
        if self._watchers:
            self._notify(plan.instance)
        for listener in self.commit_listeners:
            listener(plan)

    async def _publish(self, plan: CommitPlan) -> None:
        if self.event_bus is None:
            return
        for event in plan.events:
            try:
                await self.event_bus.emit(event)
            except Exception:
                log.exception("event bus failed", event_type=event.type, instance_id=plan.instance.id)

    def _notify(self, state: InstanceState) -> None:
        self._notify_status(state.id, state.status)

    def _notify_status(self, instance_id: str, status: WorkflowStatus) -> None:
        for wanted, future in self._watchers.get(instance_id, ()):
            if status in wanted and not future.done():
                future.set_result(None)

    async def _settled_view(self, instance_id: str) -> WorkflowInstance:
        if self.wait_for_settle:
            await self.dispatcher.settled(instance_id)
        # Unlike ``_load``, this keeps a store's cache of what this process committed: the
        # caller gets the state its call led to (a snapshot as of the call) without a read
        # back from the database.
        state = await self.store.load_instance(instance_id)
        if state is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return instance_view(state)


def _succeeded(started: datetime, finished: datetime, changes: dict[str, Any], output: Any) -> StepResult:
    return StepResult(status="succeeded", started_at=started, finished_at=finished, changes=changes, output=output)
