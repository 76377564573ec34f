"""``flowstar.flow.sync_engine``: the facade for code that does not run an event loop.

Scripts, Django views and other synchronous code call ``sync_engine.start(...)`` and get a
result back; the async facade runs on a private event loop in a daemon thread, where the
engine's steps run too.

```python
from flowstar.flow import sync_engine

run = sync_engine.start("user_onboarding", user_id=123)
sync_engine.signal("payment_confirmed")
run.refresh_from_db()
```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from flowstar.flow.engine import FlowEngine, FlowRun

if TYPE_CHECKING:
    from flowstar.engine.core import Engine
    from flowstar.engine.views import VersionUsage
    from flowstar.model.enums import WorkflowStatus

__all__ = ["SyncFlowEngine", "SyncFlowRun", "sync_engine"]

T = TypeVar("T")


class SyncFlowRun:
    """A ``FlowRun`` for synchronous code; ``refresh()`` updates it in place."""

    def __init__(self, run: FlowRun, owner: SyncFlowEngine) -> None:
        self._run = run
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    @property
    def run(self) -> FlowRun:
        """The snapshot this wraps."""
        return self._run

    def refresh(self) -> SyncFlowRun:
        """Read the instance again (this object then shows it as it is now); returns self."""
        self._run = self._owner.call(self._run.refresh)
        return self

    refresh_from_db = refresh

    def __repr__(self) -> str:
        return f"Sync{self._run!r}"


class SyncFlowEngine:
    """Blocking versions of ``FlowEngine``'s calls, run on a private event loop thread."""

    def __init__(self, facade: FlowEngine | None = None) -> None:
        self.facade = facade or FlowEngine()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="flowstar-sync-engine", daemon=True)
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    def call(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` on the private loop and return its result."""
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("the sync engine cannot be called from inside a step; use flowstar.flow.engine")
        return asyncio.run_coroutine_threadsafe(func(*args, **kwargs), loop).result()

    def use(self, engine: Engine, *, tenant_id: str | None = None, created_by: str | None = None) -> Engine:
        """Drive ``engine`` (made outside any loop, or by ``call``); returns it."""
        return self.facade.use(engine, tenant_id=tenant_id, created_by=created_by)

    def start(self, name: str | type, idempotency_key: str | None = None, **kwargs: Any) -> SyncFlowRun:
        """``FlowEngine.start``."""
        return SyncFlowRun(self.call(self.facade.start, name, idempotency_key, **kwargs), self)

    def signal(
        self, name: str, payload: Mapping[str, Any] | None = None, *, instance_id: UUID | str | None = None
    ) -> int:
        """``FlowEngine.signal``."""
        return self.call(self.facade.signal, name, payload, instance_id=instance_id)

    def report_event(
        self, name: str, entity_id: str | int, *, at: datetime | None = None, payload: Mapping[str, Any] | None = None
    ) -> str:
        """``FlowEngine.report_event``."""
        return self.call(self.facade.report_event, name, entity_id, at=at, payload=payload)

    def cancel(self, instance_id: UUID | str, reason: str = "canceled") -> SyncFlowRun:
        """``FlowEngine.cancel``."""
        return SyncFlowRun(self.call(self.facade.cancel, instance_id, reason), self)

    def get(self, instance_id: UUID | str) -> SyncFlowRun:
        """``FlowEngine.get``."""
        return SyncFlowRun(self.call(self.facade.get, instance_id), self)

    def find(
        self,
        status: WorkflowStatus | str | Iterable[WorkflowStatus | str] | None = None,
        workflow: str | type | None = None,
        *,
        limit: int = 100,
    ) -> list[SyncFlowRun]:
        """``FlowEngine.find``."""
        runs = self.call(self.facade.find, status, workflow, limit=limit)
        return [SyncFlowRun(run, self) for run in runs]

    def act(self, action: str, instance_id: UUID | str, *, user_id: str | None = None, **fields: Any) -> SyncFlowRun:
        """``FlowEngine.act``."""
        return SyncFlowRun(self.call(self.facade.act, action, instance_id, user_id=user_id, **fields), self)

    def definition_versions(self) -> list[VersionUsage]:
        """``FlowEngine.definition_versions``."""
        return self.call(self.facade.definition_versions)

    def process_scheduled(self) -> int:
        """``FlowEngine.process_scheduled``."""
        return self.call(self.facade.process_scheduled)

    def close(self) -> None:
        """Close the engine and stop the private loop."""
        if self._loop is None:
            return
        self.call(self.facade.close)
        loop, self._loop = self._loop, None
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        loop.close()


sync_engine = SyncFlowEngine()
"""The process's blocking facade (``sync_engine.use(...)`` to configure it)."""
