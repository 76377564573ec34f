"""signals and events: the wait keys of an instance, its deliveries, the signal log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 13:40:00

An instance lists the signals and events it waits for (``waiting_for``, searched by
``Engine.signal``) and the last one of each name it consumed (``deliveries``); signals and
events are logged in ``workflow_signals`` so that a wait that begins later still receives them,
and an entry stays marked undelivered (``delivered_at`` empty) until every instance waiting
for it was woken, so recovery can finish a delivery a crash cut short.
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_GUID = advanced_alchemy.types.guid.GUID(length=16)
_TIME = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
_JSON = (
    sa.JSON()
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "cockroachdb")
    .with_variant(advanced_alchemy.types.json.ORA_JSONB(), "oracle")
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
)


def upgrade() -> None:
    # Plain ADD COLUMNs and CREATE INDEX: a batch on SQLite would rebuild the table.
    op.add_column("workflow_instances", sa.Column("waiting_for", _JSON, nullable=True))
    op.add_column("workflow_instances", sa.Column("deliveries", _JSON, nullable=True))
    op.create_index("ix_workflow_instances_waiting_for", "workflow_instances", ["waiting_for"], postgresql_using="gin")
    op.create_table(
        "workflow_signals",
        sa.Column("id", _GUID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("instance_id", _GUID, nullable=True),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("occurs_at", _TIME, nullable=True),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_signals")),
    )
    op.create_index(
        "ix_workflow_signals_lookup", "workflow_signals", ["kind", "name", "tenant_id", "recorded_at"], unique=False
    )
    op.create_index(
        "ix_workflow_signals_undelivered",
        "workflow_signals",
        ["recorded_at"],
        unique=False,
        postgresql_where=sa.text("delivered_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_signals_undelivered", table_name="workflow_signals")
    op.drop_index("ix_workflow_signals_lookup", table_name="workflow_signals")
    op.drop_table("workflow_signals")
    op.drop_index("ix_workflow_instances_waiting_for", table_name="workflow_instances")
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.drop_column("deliveries")
        batch_op.drop_column("waiting_for")
