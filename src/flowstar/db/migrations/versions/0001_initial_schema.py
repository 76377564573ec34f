"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 22:05:13.592354
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "workflow_definitions",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "definition_json",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_definitions")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_workflow_definitions_name")),
    )
    with op.batch_alter_table("workflow_definitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_definitions_name"), ["name"], unique=False)

    op.create_table(
        "workflow_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("instance_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_outbox")),
    )
    with op.batch_alter_table("workflow_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_outbox_instance_id"), ["instance_id"], unique=False)

    op.create_table(
        "workflow_instances",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("definition_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("workflow_name", sa.String(length=255), nullable=False),
        sa.Column("workflow_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_step", sa.String(length=255), nullable=True),
        sa.Column(
            "context_data",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_step", sa.String(length=255), nullable=True),
        sa.Column("started_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("completed_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column(
            "tokens",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "joins",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "history",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dispatch_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["workflow_definitions.id"],
            name=op.f("fk_workflow_instances_definition_id_workflow_definitions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_instances")),
    )
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_instances_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_instances_definition_id"), ["definition_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_instances_dispatch_at"), ["dispatch_at"], unique=False)
        batch_op.create_index("ix_workflow_instances_name_status", ["workflow_name", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_instances_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_instances_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_workflow_instances_tenant_status", ["tenant_id", "status"], unique=False)

    op.create_table(
        "workflow_step_executions",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("instance_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("step_name", sa.String(length=255), nullable=False),
        sa.Column("step_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "input_data",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "output_data",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("completed_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("assigned_to", sa.String(length=255), nullable=True),
        sa.Column("completed_by", sa.String(length=255), nullable=True),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("parent_step", sa.String(length=255), nullable=True),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["workflow_instances.id"],
            name=op.f("fk_workflow_step_executions_instance_id_workflow_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_step_executions")),
    )
    with op.batch_alter_table("workflow_step_executions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_step_executions_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_step_executions_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_step_executions_step_name"), ["step_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_step_executions_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "workflow_human_tasks",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("instance_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("step_execution_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("workflow_name", sa.String(length=255), nullable=False),
        sa.Column("step_name", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "form_schema",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("assignee_id", sa.String(length=255), nullable=True),
        sa.Column("assignee_group", sa.String(length=255), nullable=True),
        sa.Column("due_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("reminder_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("completed_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=255), nullable=True),
        sa.Column(
            "data",
            sa.JSON()
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
            .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
            .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["workflow_instances.id"],
            name=op.f("fk_workflow_human_tasks_instance_id_workflow_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_execution_id"],
            ["workflow_step_executions.id"],
            name=op.f("fk_workflow_human_tasks_step_execution_id_workflow_step_executions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_human_tasks")),
    )
    with op.batch_alter_table("workflow_human_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_assignee_group"), ["assignee_group"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_instance_id"), ["instance_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_status"), ["status"], unique=False)
        batch_op.create_index("ix_workflow_human_tasks_status_assignee", ["status", "assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workflow_human_tasks_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("workflow_human_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_tenant_id"))
        batch_op.drop_index("ix_workflow_human_tasks_status_assignee")
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_instance_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_due_at"))
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_assignee_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_human_tasks_assignee_group"))

    op.drop_table("workflow_human_tasks")
    with op.batch_alter_table("workflow_step_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_step_executions_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_step_executions_step_name"))
        batch_op.drop_index(batch_op.f("ix_workflow_step_executions_status"))
        batch_op.drop_index(batch_op.f("ix_workflow_step_executions_instance_id"))

    op.drop_table("workflow_step_executions")
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_instances_tenant_status")
        batch_op.drop_index(batch_op.f("ix_workflow_instances_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_instances_status"))
        batch_op.drop_index("ix_workflow_instances_name_status")
        batch_op.drop_index(batch_op.f("ix_workflow_instances_dispatch_at"))
        batch_op.drop_index(batch_op.f("ix_workflow_instances_definition_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_instances_created_by"))

    op.drop_table("workflow_instances")
    with op.batch_alter_table("workflow_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_outbox_instance_id"))

    op.drop_table("workflow_outbox")
    with op.batch_alter_table("workflow_definitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_definitions_name"))

    op.drop_table("workflow_definitions")
