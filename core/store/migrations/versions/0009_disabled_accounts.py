"""Disabled accounts: ``users.disabled_at``; an index on ``used_tokens.used_at``.

* ``users.disabled_at``: set while an admin has disabled the account
  (core.identity.account_state); NULL for every existing account, so nothing changes
  for them.
* ``ix_used_tokens_used_at``: spent one-time tokens are pruned by age
  (core.ops.token_pruning) without reading the whole table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", core.store.tables.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index("ix_used_tokens_used_at", "used_tokens", ["used_at"])


def downgrade() -> None:
    op.drop_index("ix_used_tokens_used_at", table_name="used_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
