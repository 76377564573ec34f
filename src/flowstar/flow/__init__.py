"""Code-first workflows: ``@workflow`` classes whose ``@step`` methods return what happens next.

```python
from flowstar.flow import workflow, step, get_context, goto, complete

@workflow("order_fulfillment")
class OrderFulfillment:
    class Context(BaseModel):
        order_id: int
        shipped: bool = False

    @step(start=True)
    def ship(self):
        get_context().shipped = True
        return complete()
```

A class compiles into an ordinary ``flowstar.WorkflowDefinition`` (``routing="commands"``)
that every engine runs; ``flowstar.flow.engine`` is a small async facade over any engine,
``flowstar.flow.sync_engine`` its blocking twin.  See docs/code-first.md.
"""

from flowstar.flow.commands import (
    ChildResult,
    Wakeup,
    child_result,
    complete,
    fail,
    goto,
    sleep,
    start_child,
    wait,
    wait_for_event,
    wakeup,
)
from flowstar.flow.compiler import event_workflow, step, workflow
from flowstar.flow.context import DictContext, EventInfo, current_data, get_context
from flowstar.flow.engine import FlowEngine, FlowRun, engine
from flowstar.flow.retry import Retry
from flowstar.flow.sync import SyncFlowEngine, SyncFlowRun, sync_engine

__all__ = [
    "ChildResult",
    "DictContext",
    "EventInfo",
    "FlowEngine",
    "FlowRun",
    "Retry",
    "SyncFlowEngine",
    "SyncFlowRun",
    "Wakeup",
    "child_result",
    "complete",
    "current_data",
    "engine",
    "event_workflow",
    "fail",
    "get_context",
    "goto",
    "sleep",
    "start_child",
    "step",
    "sync_engine",
    "wait",
    "wait_for_event",
    "wakeup",
    "workflow",
]
