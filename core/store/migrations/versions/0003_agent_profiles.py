"""Agent profiles: named agents that task steps use by name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_profiles",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("agent_type", sa.String(length=32), nullable=False),
        sa.Column("model_provider", sa.String(length=32), nullable=True),
        sa.Column("model_id", sa.String(length=200), nullable=True),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("held_tools", JSON, nullable=False),
        sa.Column("max_steps", sa.Integer(), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_agent_profiles")),
    )
    with op.batch_alter_table("agent_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_profiles_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agent_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_profiles_created_at"))
    op.drop_table("agent_profiles")
