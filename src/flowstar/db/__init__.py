"""SQL persistence (``pip install 'flowstar[db]'``): models, repositories, store and engine."""

from flowstar.db.connect import DEFAULT_DATABASE_URL, create_database_engine
from flowstar.db.engine import PersistentExecutionEngine, coerce_store
from flowstar.db.models import (
    Base,
    HumanTaskModel,
    OutboxModel,
    StepExecutionModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
    metadata,
)
from flowstar.db.repositories import (
    HumanTaskRepository,
    StepExecutionRepository,
    WorkflowDefinitionRepository,
    WorkflowInstanceRepository,
)
from flowstar.db.store import SQLAlchemyStore

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Base",
    "HumanTaskModel",
    "HumanTaskRepository",
    "OutboxModel",
    "PersistentExecutionEngine",
    "SQLAlchemyStore",
    "StepExecutionModel",
    "StepExecutionRepository",
    "WorkflowDefinitionModel",
    "WorkflowDefinitionRepository",
    "WorkflowInstanceModel",
    "WorkflowInstanceRepository",
    "coerce_store",
    "create_database_engine",
    "metadata",
]
