"""``flowstar.flow.engine``: the code-first facade over any flowstar engine.

```python
from flowstar.flow import engine

run = await engine.start("order_fulfillment", order_id=123)
await engine.signal("payment_confirmed", {"amount": 10})
run = await run.refresh()
```

It is a thin layer: ``start`` builds the start data through the workflow's
``create_context`` and calls ``start_workflow``; the other calls go straight to the engine
(``engine.use(...)`` picks it; by default a ``LocalExecutionEngine`` on the default
registry, made on first use).  Runs come back as ``FlowRun`` views with the typed context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowstar.flow.compiler import CompiledWorkflow, compiled_workflow
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, WorkflowStatus, workflow_status
from flowstar.model.errors import ValidationError, WorkflowNotFoundError

if TYPE_CHECKING:
    from flowstar.engine.core import Engine
    from flowstar.engine.views import VersionUsage, WorkflowInstance
    from flowstar.model.definition import WorkflowDefinition

__all__ = ["FlowEngine", "FlowRun", "engine"]


class FlowRun:
    """A snapshot of one workflow instance, as the call that returned it saw it.

    Attributes:
        instance: the engine's ``WorkflowInstance`` view.
    """

    __slots__ = ("_compiled", "_facade", "instance")

    def __init__(self, instance: WorkflowInstance, compiled: CompiledWorkflow | None, facade: FlowEngine) -> None:
        self.instance = instance
        self._compiled = compiled
        self._facade = facade

    @property
    def id(self) -> UUID:
        """The instance id."""
        return self.instance.id

    @property
    def name(self) -> str:
        """The workflow's name."""
        return self.instance.workflow_name

    @property
    def version(self) -> str:
        """The definition version the instance runs."""
        return self.instance.workflow_version

    @property
    def status(self) -> WorkflowStatus:
        """``running``, ``waiting``, ``completed``, ``failed``, ``canceled`` (or ``pending``)."""
        return self.instance.status

    @property
    def current_step(self) -> str | None:
        """The step most recently entered."""
        return self.instance.current_step

    @property
    def data(self) -> dict[str, Any]:
        """The instance data (every key: the context's fields and the rest)."""
        return self.instance.data

    @property
    def error(self) -> str | None:
        """Why it failed (or the cancellation reason)."""
        return self.instance.error

    @property
    def waiting_for(self) -> list[str]:
        """What it waits for (``["signal:approval", "event:payment_received"]``)."""
        return list(getattr(self.instance, "waiting_for", None) or [])

    @property
    def waiting_signal(self) -> str | None:
        """The signal it waits for, if it waits for one."""
        value = getattr(self.instance, "waiting_signal", None)
        return value if isinstance(value, str) else None

    @property
    def wake_at(self) -> datetime | None:
        """When its sleep, wait timeout or retry is due, if it has one."""
        value = getattr(self.instance, "wake_at", None)
        return value if isinstance(value, datetime) else None

    @property
    def finished(self) -> bool:
        """Whether it completed, failed or was canceled."""
        return self.status in TERMINAL_WORKFLOW_STATUSES

    @property
    def context(self) -> Any:
        """The typed context (the workflow's ``Context`` read from the data), or a
        ``DictContext`` for a workflow without one; None for a graph workflow."""
        if self._compiled is None:
            return None
        return self._compiled.model.load(self.data)

    async def refresh(self) -> FlowRun:
        """The instance as it is now (a new snapshot)."""
        return await self._facade.get(self.id)

    def __repr__(self) -> str:
        status = self.status.value
        return f"FlowRun(id={str(self.id)!r}, name={self.name!r}, status={status!r}, step={self.current_step!r})"


class FlowEngine:
    """The code-first facade: start, signal, report events, look up and cancel runs.

    Args:
        engine: the flowstar engine to drive (default: made on first use, see ``use``).
        tenant_id: the tenant its starts, signals and events belong to.
        created_by: who its starts are recorded as started by.
    """

    def __init__(self, engine: Engine | None = None, *, tenant_id: str | None = None, created_by: str | None = None):
        self._engine = engine
        self.tenant_id = tenant_id
        self.created_by = created_by

    def use(self, engine: Engine, *, tenant_id: str | None = None, created_by: str | None = None) -> Engine:
        """Drive ``engine`` from now on (a ``LocalExecutionEngine``, ``PersistentExecutionEngine``
        or ``SAQExecutionEngine``); returns it.  The previous engine is not closed."""
        self._engine = engine
        self.tenant_id = tenant_id
        self.created_by = created_by
        return engine

    @property
    def engine(self) -> Engine:
        """The engine in use: the one given to ``use``, else a ``LocalExecutionEngine`` on the
        default registry, made now (in memory: for scripts and tests)."""
        if self._engine is None:
            from flowstar.engine.local import LocalExecutionEngine

            self._engine = LocalExecutionEngine()
        return self._engine

    async def close(self) -> None:
        """Close the engine in use (the next call makes a new default one)."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.close()

    def _definition(self, workflow: str | type) -> WorkflowDefinition:
        definition = getattr(workflow, "definition", None) if isinstance(workflow, type) else None
        if definition is not None:
            return definition  # type: ignore[no-any-return]
        if not isinstance(workflow, str):
            raise WorkflowNotFoundError(f"{workflow!r} is not a workflow name or @workflow class")
        return self.engine.registry.get_definition(workflow)

    def _run(self, instance: WorkflowInstance) -> FlowRun:
        try:
            definition = self.engine.registry.get_definition(instance.workflow_name, instance.workflow_version)
        except WorkflowNotFoundError:
            return FlowRun(instance, None, self)
        return FlowRun(instance, compiled_workflow(definition), self)

    async def start(self, name: str | type, idempotency_key: str | None = None, **kwargs: Any) -> FlowRun:
        """Start workflow ``name`` (or a ``@workflow`` class) with its context built from ``kwargs``.

        ``kwargs`` go to the class's ``create_context`` (or its ``Context``); the result,
        validated, is the instance's start data.  With an ``idempotency_key``, a start with
        a key used before (in this tenant) returns the instance it started.  An in-process
        engine returns once the instance has settled (waiting or finished).

        Raises:
            WorkflowNotFoundError: no such workflow.
            ValidationError: ``kwargs`` do not make a valid context.
        """
        definition = self._definition(name)
        compiled = compiled_workflow(definition)
        data = compiled.model.create(**kwargs) if compiled is not None else dict(kwargs)
        instance = await self.engine.start_workflow(
            definition.name,
            data,
            definition.version,
            tenant_id=self.tenant_id,
            created_by=self.created_by,
            idempotency_key=idempotency_key,
        )
        return FlowRun(instance, compiled, self)

    async def signal(
        self, name: str, payload: Mapping[str, Any] | None = None, *, instance_id: UUID | str | None = None
    ) -> int:
        """Send signal ``name``: its payload joins the data of every instance of the tenant
        waiting for it (or only of ``instance_id``).  Returns how many were resumed; a signal
        that finds no waiter is kept for waits that begin within their lookback."""
        return await self.engine.signal(name, payload, instance_id=instance_id, tenant_id=self.tenant_id)

    async def report_event(
        self,
        name: str,
        entity_id: str | int,
        *,
        at: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Report that event ``name`` happened (or will, ``at``) to ``entity_id``.

        Resumes instances waiting for it and starts the ``event_workflow``s it triggers
        (at ``at`` plus their offset; reporting it again for the same entity and time starts
        nothing more, a new time moves the pending start).  Returns the event's id.
        """
        return await self.engine.report_event(name, str(entity_id), at=at, payload=payload, tenant_id=self.tenant_id)

    async def cancel(self, instance_id: UUID | str, reason: str = "canceled") -> FlowRun:
        """Cancel a running or waiting instance."""
        return self._run(await self.engine.cancel_workflow(instance_id, reason, self.created_by))

    async def get(self, instance_id: UUID | str) -> FlowRun:
        """The instance as it is now."""
        return self._run(await self.engine.get_instance(instance_id))

    async def find(
        self,
        status: WorkflowStatus | str | Iterable[WorkflowStatus | str] | None = None,
        workflow: str | type | None = None,
        *,
        limit: int = 100,
    ) -> list[FlowRun]:
        """The newest instances with ``status`` (one or several) of ``workflow`` (a name or class).

        Raises:
            ValidationError: a status that is none (the message lists them).
        """
        statuses: list[WorkflowStatus] | None = None
        if isinstance(status, str):
            statuses = [workflow_status(status)]
        elif status is not None:
            statuses = [workflow_status(s) for s in status]
        name = self._definition(workflow).name if isinstance(workflow, type) else workflow
        page = await self.engine.find_instances(workflow_name=name, status=statuses, limit=limit)
        return [self._run(instance) for instance in page.items]

    async def act(self, action: str, instance_id: UUID | str, *, user_id: str | None = None, **fields: Any) -> FlowRun:
        """Complete the task of the step offered as ``action`` (``@step(action=...)``) with
        ``fields``; the step's method then runs with them.

        Raises:
            ValidationError: the instance's workflow offers no such action.
            FormValidationError: ``fields`` break the step's form.
        """
        instance = await self.engine.get_instance(instance_id)
        definition = self.engine.registry.get_definition(instance.workflow_name, instance.workflow_version)
        actions = definition.metadata.get("actions") or {}
        step_name = actions.get(action) if isinstance(actions, Mapping) else None
        if not isinstance(step_name, str):
            raise ValidationError(f"workflow {definition.name!r} has no action {action!r}")
        done = await self.engine.complete_human_task(instance_id, step_name, user_id or self.created_by or "", fields)
        return self._run(done)

    async def definition_versions(self) -> list[VersionUsage]:
        """Every version registered here or still run by an instance, with its ``running``
        count (``Engine.definition_versions``, in the facade's tenant): a version may leave
        the code once none of its instances runs."""
        return await self.engine.definition_versions(tenant_id=self.tenant_id)

    async def process_scheduled(self) -> int:
        """Run what is due now on an in-process engine and wait until it has settled.

        Returns how many instances ran.  (Timers fire by themselves; this is for tests and
        scripts that want to know everything due has happened: see ``flowstar.testing``.)
        """
        from flowstar.testing import settle

        return await settle(self.engine)


engine = FlowEngine()
"""The process's facade (configure it once with ``engine.use(...)``)."""
