"""Approval requests keep the call they guard and the call their decision released;
workflows count the engine errors of their current step.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 13:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_call", JSON, nullable=True))
        batch_op.add_column(sa.Column("released_call", JSON, nullable=True))
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine_errors", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_column("engine_errors")
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_column("released_call")
        batch_op.drop_column("proposed_call")
