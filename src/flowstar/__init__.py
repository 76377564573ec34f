"""flowstar: durable workflows mixing machine steps and human steps, for async Python."""

from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock, ManualClock, SystemClock
from flowstar.engine.core import Engine
from flowstar.engine.groups import ParallelGroup, SequentialGroup, StepGroup
from flowstar.engine.local import LocalExecutionEngine
from flowstar.engine.views import WorkflowInstance
from flowstar.exceptions import (
    BulkOperationNotFoundError,
    ConcurrencyError,
    ConditionEvaluationError,
    ConfigurationError,
    ContextSerializationError,
    FlowstarError,
    FormValidationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    StepExecutionError,
    StepNotFoundError,
    StepTimeoutError,
    StoreUnavailableError,
    TaskAlreadyCompletedError,
    TaskClaimedError,
    TaskNotFoundError,
    UnsafeExpressionError,
    ValidationError,
    WorkflowNotFoundError,
    WorkflowsError,
)
from flowstar.model.access import User
from flowstar.model.bulk import BulkFilter, BulkOperation, BulkRequest
from flowstar.model.conditions import Condition
from flowstar.model.context import StepExecution, WorkflowContext
from flowstar.model.definition import Edge, WorkflowDefinition, WorkflowGraph
from flowstar.model.enums import StepStatus, StepType, TaskStatus, WorkflowStatus
from flowstar.model.escalation import Escalation
from flowstar.model.gateways import BaseGateway, ExclusiveGateway, ParallelGateway
from flowstar.model.protocols import ExecutionEngine
from flowstar.model.registry import WorkflowRegistry, default_registry
from flowstar.model.retry import RetryPolicy
from flowstar.model.state import HumanTask, StepRecord, TaskAuditEntry
from flowstar.model.steps import BaseHumanStep, BaseMachineStep, BaseStep, Step
from flowstar.model.waits import EventStep, SignalStep, TimerStep, WebhookStep

__version__ = "0.1.0"

__all__ = [
    "BaseGateway",
    "BaseHumanStep",
    "BaseMachineStep",
    "BaseStep",
    "BulkFilter",
    "BulkOperation",
    "BulkOperationNotFoundError",
    "BulkRequest",
    "Clock",
    "ConcurrencyError",
    "Condition",
    "ConditionEvaluationError",
    "ConfigurationError",
    "ContextSerializationError",
    "Edge",
    "Engine",
    "Escalation",
    "EventStep",
    "EventBus",
    "ExclusiveGateway",
    "ExecutionEngine",
    "FlowstarError",
    "FormValidationError",
    "HumanTask",
    "InstanceNotFoundError",
    "InvalidTransitionError",
    "PermissionDeniedError",
    "LocalExecutionEngine",
    "ManualClock",
    "ParallelGateway",
    "ParallelGroup",
    "RetryPolicy",
    "SequentialGroup",
    "SignalStep",
    "Step",
    "StepExecution",
    "StepExecutionError",
    "StepNotFoundError",
    "StepGroup",
    "StepRecord",
    "StepStatus",
    "StepTimeoutError",
    "StoreUnavailableError",
    "StepType",
    "SystemClock",
    "TaskAlreadyCompletedError",
    "TaskAuditEntry",
    "TaskClaimedError",
    "TaskNotFoundError",
    "TaskStatus",
    "TimerStep",
    "UnsafeExpressionError",
    "User",
    "ValidationError",
    "WebhookStep",
    "WorkflowContext",
    "WorkflowDefinition",
    "WorkflowGraph",
    "WorkflowInstance",
    "WorkflowNotFoundError",
    "WorkflowRegistry",
    "WorkflowStatus",
    "WorkflowsError",
    "__version__",
    "default_registry",
]
