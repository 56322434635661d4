"""The tamper-evident trail: a hash chain per workflow over events and votes.

* ``workflow_events`` and ``approval_responses`` gain ``trail_chain``,
  ``trail_seq``, ``trail_prev`` and ``trail_hash`` (core.records.trail), with a
  unique (chain, position) index each.
* Rows written before this migration are chained here (backfilled), in the
  order they were written (time, then events before votes, then id). Their
  hashes prove they have not changed since the upgrade, not since they were
  written: docs/policy.md says so. The append-only triggers are lifted for
  this one rewrite and restored.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.base.trail_hash import EVENT_FIELDS, GENESIS, VOTE_FIELDS, entry_hash, event_chain
from core.store.tables import ApprovalRequest, ApprovalResponse, WorkflowEvent

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLES = ("workflow_events", "approval_responses")
APPEND_ONLY_MESSAGE = "is append-only: rows are never updated or deleted"


def _without_append_only(bind: sa.engine.Connection, rewrite: Any) -> None:
    """Run ``rewrite`` with the audit tables' UPDATE triggers lifted, then restore them."""
    postgres = bind.dialect.name == "postgresql"
    for table in TABLES:
        if postgres:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    rewrite()
    for table in TABLES:
        if postgres:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        else:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} {APPEND_ONLY_MESSAGE}'); END"
            )


def _backfill(bind: sa.engine.Connection) -> None:
    events: sa.Table = WorkflowEvent.__table__  # type: ignore[assignment]
    votes: sa.Table = ApprovalResponse.__table__  # type: ignore[assignment]
    requests: sa.Table = ApprovalRequest.__table__  # type: ignore[assignment]
    entries: dict[str, list[tuple[Any, int, int, str, dict[str, Any]]]] = defaultdict(list)
    for row in bind.execute(sa.select(events.c.id, *(events.c[f] for f in EVENT_FIELDS))).mappings():
        chain = event_chain(row["workflow_id"], row["session_id"], row["approval_id"])
        entries[chain].append((row["created_at"], 0, row["id"], "event", dict(row)))
    for row in bind.execute(
        sa.select(
            votes.c.id, requests.c.workflow_id.label("request_workflow"), *(votes.c[f] for f in VOTE_FIELDS)
        ).join(requests, requests.c.id == votes.c.approval_id)
    ).mappings():
        chain = row["request_workflow"] or f"approval:{row['approval_id']}"
        entries[chain].append((row["created_at"], 1, row["id"], "vote", dict(row)))
    updates: dict[str, list[dict[str, Any]]] = {"event": [], "vote": []}
    for chain, rows in entries.items():
        prev = GENESIS
        for seq, (_, _, row_id, kind, values) in enumerate(sorted(rows, key=lambda e: e[:3]), 1):
            fields = EVENT_FIELDS if kind == "event" else VOTE_FIELDS
            digest = entry_hash(kind, {f: values[f] for f in fields}, chain=chain, seq=seq, prev=prev)
            updates[kind].append({"row_id": row_id, "c": chain, "s": seq, "p": prev, "h": digest})
            prev = digest
    for kind, table in (("event", events), ("vote", votes)):
        if updates[kind]:
            bind.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values(
                    trail_chain=sa.bindparam("c"),
                    trail_seq=sa.bindparam("s"),
                    trail_prev=sa.bindparam("p"),
                    trail_hash=sa.bindparam("h"),
                ),
                updates[kind],
            )


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("trail_chain", sa.String(length=80), nullable=True))
        op.add_column(table, sa.Column("trail_seq", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("trail_prev", sa.String(length=64), nullable=True))
        op.add_column(table, sa.Column("trail_hash", sa.String(length=64), nullable=True))
        op.create_index(f"ix_{table}_trail", table, ["trail_chain", "trail_seq"], unique=True)
    bind = op.get_bind()
    _without_append_only(bind, lambda: _backfill(bind))


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_trail", table_name=table)
        for column in ("trail_hash", "trail_prev", "trail_seq", "trail_chain"):
            op.drop_column(table, column)  # no batch copy: it would drop the triggers
