"""inbox: task access, audit trail, keyset indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 23:10:00

Two parts, each with its own upgrade and downgrade below: the read side (indexes for keyset
pages of tasks and instances) and the task access part (candidates, claims, priority,
follow-up dates, the audit trail).
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

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


_GUID = advanced_alchemy.types.guid.GUID(length=16)
_TIME = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
_JSON = (
    sa.JSON()
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
    .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
)
_TASK_COLUMNS = ("claimed_by", "claimed_at", "priority", "follow_up_at")


def _upgrade_task_access() -> None:
    # Plain ADD COLUMNs (the model lists these columns last, as SQLite then stores them).
    with op.batch_alter_table("workflow_human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="50", nullable=False))
        batch_op.add_column(sa.Column("follow_up_at", _TIME, nullable=True))
    op.create_table(
        "workflow_task_candidates",
        sa.Column("task_id", _GUID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["workflow_human_tasks.id"],
            name=op.f("fk_workflow_task_candidates_task_id_workflow_human_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "kind", "name", name=op.f("pk_workflow_task_candidates")),
    )
    with op.batch_alter_table("workflow_task_candidates", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_task_candidates_kind_name", ["kind", "name", "task_id"], unique=False)
    op.create_table(
        "workflow_task_audit",
        sa.Column("id", _GUID, nullable=False),
        sa.Column("task_id", _GUID, nullable=False),
        sa.Column("instance_id", _GUID, nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_task_audit")),
    )
    with op.batch_alter_table("workflow_task_audit", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_task_audit_task_at", ["task_id", "at"], unique=False)


def _downgrade_task_access() -> None:
    with op.batch_alter_table("workflow_task_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_task_audit_task_at")
    op.drop_table("workflow_task_audit")
    with op.batch_alter_table("workflow_task_candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_task_candidates_kind_name")
    op.drop_table("workflow_task_candidates")
    with op.batch_alter_table("workflow_human_tasks", schema=None) as batch_op:
        for column in reversed(_TASK_COLUMNS):
            batch_op.drop_column(column)


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
    (
        "workflow_human_tasks",
        "ix_workflow_human_tasks_inbox_claimed",
        ["status", "tenant_id", "claimed_by", "created_at", "id"],
    ),
    ("workflow_human_tasks", "ix_workflow_human_tasks_status_created", ["status", "created_at", "id"]),
)


def _upgrade_read_side() -> None:
    for table, name, columns in _READ_INDEXES:
        op.create_index(name, table, columns, unique=False)


def _downgrade_read_side() -> None:
    for table, name, _columns in reversed(_READ_INDEXES):
        op.drop_index(name, table_name=table)
