"""Outputs live once, on their step runs; step events record what changed.

* ``step_runs.undone_at``: when a finished rollback took the run's output out
  of its workflow's outputs. Runs already compensated or rolled back are
  marked undone now.
* ``step.completed`` events are rewritten from whole-state snapshots (context
  and every output, before and after) to what the event changed: the
  position, the step's output as a reference to its step run, and any
  context keys changed since the previous event. The state at every event
  stays derivable (core.records.history folds the events). The audit trail's
  append-only trigger is lifted for this rewrite only.
* ``workflows.step_outputs`` and ``workflow_checkpoints.step_outputs`` are
  dropped: a workflow's outputs are its runs' (``Workflow.step_outputs``),
  and a checkpoint's are those of the runs up to its watermark.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 10:00:00.000000
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import core.store.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
APPEND_ONLY_MESSAGE = "is append-only: rows are never updated or deleted"
REF = "$step_run"


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _dump(value: Any) -> Any:
    return None if value is None else json.dumps(value)


def _without_append_only(bind: sa.engine.Connection, rewrite: Any) -> None:
    """Run ``rewrite`` with the audit trail's UPDATE trigger lifted, then restore it."""
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE workflow_events DISABLE TRIGGER workflow_events_append_only")
        rewrite()
        op.execute("ALTER TABLE workflow_events ENABLE TRIGGER workflow_events_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS workflow_events_no_update")
        rewrite()
        op.execute(
            "CREATE TRIGGER workflow_events_no_update BEFORE UPDATE ON workflow_events "
            f"BEGIN SELECT RAISE(ABORT, 'workflow_events {APPEND_ONLY_MESSAGE}'); END"
        )


def _slim_step_events(bind: sa.engine.Connection) -> None:
    """Rewrite every ``step.completed`` event's snapshots to what it changed."""
    events = sa.table(
        "workflow_events",
        sa.column("id"),
        sa.column("workflow_id"),
        sa.column("event_type"),
        sa.column("before"),
        sa.column("after"),
        sa.column("data"),
    )
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.workflow_id,
            events.c.event_type,
            events.c.before,
            events.c.after,
            events.c.data,
        )
        .where(
            events.c.workflow_id.is_not(None),
            sa.or_(events.c.before.is_not(None), events.c.after.is_not(None)),
        )
        .order_by(events.c.workflow_id, events.c.id)
    )
    # Per workflow, the context as the events so far leave it: a slimmed
    # event keeps the context keys that changed since (e.g. a decision).
    workflows = sa.table("workflows", sa.column("id"), sa.column("definition"), sa.column("input_data"))

    def starting_context(workflow_id: str) -> dict[str, Any]:
        row = bind.execute(
            sa.select(workflows.c.definition, workflows.c.input_data).where(workflows.c.id == workflow_id)
        ).first()
        if row is None:
            return {}
        definition = _load(row.definition) or {}
        return {**(definition.get("context") or {}), **(_load(row.input_data) or {})}

    context: dict[str, Any] = {}
    current: str | None = None
    updates = []
    for row in rows.all():
        if row.workflow_id != current:
            current, context = row.workflow_id, starting_context(row.workflow_id)
        before, after, data = _load(row.before) or {}, _load(row.after) or {}, _load(row.data) or {}
        if row.event_type != "step.completed" or "step_outputs" not in after:
            if isinstance(after.get("context"), dict):
                context = (
                    dict(after["context"])
                    if row.event_type == "workflow.rolled_back"
                    else {**context, **after["context"]}
                )
            continue
        old_outputs = before.get("step_outputs") or {}
        new_outputs = after.get("step_outputs") or {}
        run_id = data.get("step_run_id")
        changed = [
            name
            for name, value in new_outputs.items()
            if name not in old_outputs or old_outputs[name] != value
        ]
        slim_before: dict[str, Any] = {"current_step": before.get("current_step"), "step_outputs": {}}
        slim_after: dict[str, Any] = {
            "current_step": after.get("current_step"),
            "step_outputs": {
                name: ({REF: run_id} if isinstance(run_id, int) else new_outputs[name]) for name in changed
            },
        }
        new_context = after.get("context") or {}
        context_changed = {k: v for k, v in new_context.items() if context.get(k) != v}
        if context_changed:
            slim_before["context"] = {k: context[k] for k in context_changed if k in context}
            slim_after["context"] = context_changed
        context = {**context, **new_context}
        for key in ("status",):
            if before.get(key) != after.get(key):
                slim_before[key], slim_after[key] = before.get(key), after.get(key)
        updates.append({"event_id": row.id, "new_before": _dump(slim_before), "new_after": _dump(slim_after)})
    if not updates:
        return
    cast = "CAST(:{0} AS JSONB)" if bind.dialect.name == "postgresql" else ":{0}"
    statement = sa.text(
        f"UPDATE workflow_events SET before = {cast.format('new_before')}, "
        f"after = {cast.format('new_after')} WHERE id = :event_id"
    )
    for start in range(0, len(updates), 1000):
        bind.execute(statement, updates[start : start + 1000])


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("undone_at", core.store.tables.UTCDateTime(timezone=True), nullable=True)
        )
    now = datetime.now(UTC)
    step_runs = sa.table(
        "step_runs", sa.column("status"), sa.column("undone_at", core.store.tables.UTCDateTime(timezone=True))
    )
    bind.execute(
        sa.update(step_runs)
        .where(step_runs.c.status.in_(("compensated", "rolled_back")))
        .values(undone_at=now)
    )
    _without_append_only(bind, lambda: _slim_step_events(bind))
    # SQLite (3.35+) drops a column in place: no table copy, which the
    # workflows table's foreign keys would refuse.
    if bind.dialect.name == "postgresql":
        op.drop_column("workflows", "step_outputs")
        op.drop_column("workflow_checkpoints", "step_outputs")
    else:
        op.execute("ALTER TABLE workflows DROP COLUMN step_outputs")
        op.execute("ALTER TABLE workflow_checkpoints DROP COLUMN step_outputs")


def downgrade() -> None:
    # The dropped copies are rebuilt from the step runs; slimmed events stay slim
    # (core.records.history folds them to the same states).
    bind = op.get_bind()
    for table in ("workflows", "workflow_checkpoints"):
        op.add_column(table, sa.Column("step_outputs", JSON, nullable=False, server_default=sa.text("'{}'")))
    runs = bind.execute(
        sa.text(
            "SELECT id, workflow_id, step_name, output FROM step_runs "
            "WHERE status IN ('completed', 'compensated', 'rolled_back') AND output IS NOT NULL "
            "AND undone_at IS NULL ORDER BY id"
        )
    ).all()
    outputs: dict[str, dict[str, Any]] = {}
    for run in runs:
        outputs.setdefault(run.workflow_id, {})[run.step_name] = _load(run.output)
    cast = "CAST(:outputs AS JSONB)" if bind.dialect.name == "postgresql" else ":outputs"
    for workflow_id, values in outputs.items():
        bind.execute(
            sa.text(f"UPDATE workflows SET step_outputs = {cast} WHERE id = :id"),
            {"outputs": json.dumps(values), "id": workflow_id},
        )
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_column("undone_at")
