"""idempotency keys of starts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 08:10:00

A start's idempotency key (scoped to its tenant) is kept on the instance it started, under a
unique constraint: a second start with the key writes nothing and finds that instance, in
any process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=600), nullable=True))
        batch_op.create_index("uq_workflow_instances_idempotency_key", ["idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("workflow_instances", schema=None) as batch_op:
        batch_op.drop_index("uq_workflow_instances_idempotency_key")
        batch_op.drop_column("idempotency_key")
