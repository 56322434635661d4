"""A plain step's start, outcome and the workflow's end in SQLAlchemy Core
statements, without the ORM's unit of work (core.engine.start_path,
step_path, finish_path hold the statements): the runner's hot path. Each
method returns None or False when its step is not plain or the rows changed
under it, having written nothing; the caller then takes the general path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import String, cast, func, insert, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.definitions.workflow import Step, WorkflowDefinition
from core.engine import finish_path, start_path, step_path
from core.engine.executor_base import ExecutorBase, Ready, moved_past
from core.engine.step_outputs import scope_values
from core.records import rows as store
from core.store.tables import StepRun, Workflow, utcnow

log = structlog.get_logger(__name__)

__all__ = ["CorePaths"]


class CorePaths(ExecutorBase):
    """The executor's Core paths for plain steps."""

    def _start_plain(self, session: Session, workflow: Workflow, step: Step) -> Ready:
        """Start a step that acts at once, in the transaction that locked the workflow
        (core.engine.start_path): the ORM workflow is left as committed."""
        now = utcnow()
        started, hooks = start_path.start_plain(
            session.connection(),
            self.db.is_postgres,
            self.runner_id,
            workflow_id=workflow.id,
            index=workflow.current_step,
            step_name=step.name,
            step_type=step.type,
            now=now,
        )
        if hooks is not None:
            self._webhook_row = hooks
        set_committed_value(workflow, "current_step_run_id", started.run_id)
        set_committed_value(workflow, "updated_at", now)
        log.info("step started", step_type=step.type, step_run_id=started.run_id, attempt=1)
        return Ready(
            step,
            started.run_id,
            started.key,
            self._scope(workflow),
            index=workflow.current_step,
            ahead=started.ahead,
        )

    def _start_unread(self, workflow_id: str, acts_at_once: Callable[[Step], bool]) -> Ready | None:
        """PostgreSQL: start a claimed workflow's plain step without locking it first
        (core.engine.start_path.start_unread), from what its claim read (one round trip)
        or else from a read of its own (two); None when it is not at such a start or its
        row changed meanwhile (nothing written: the caller takes the locked path, which
        decides)."""
        claimed = self.claimed_read(workflow_id)
        with self.db.runner_engine.connect() as conn, conn.begin():
            for seen in (claimed, None) if claimed is not None else (None,):
                if seen is None:  # none from the claim, or the row changed since it
                    cached = workflow_id in self._definitions
                    seen = start_path.read_for_start(conn, self.runner_id, workflow_id, definition=not cached)
                step = self._plain_start(workflow_id, seen, acts_at_once)
                if seen is None or step is None:
                    return None
                now = utcnow()
                started = start_path.start_unread(
                    conn, self.runner_id, seen, step_name=step.name, step_type=step.type, now=now
                )
                if started is not None:
                    break
            else:
                return None
        self._webhook_row = seen.hooks
        structlog.contextvars.bind_contextvars(step=step.name)
        log.info("step started", step_type=step.type, step_run_id=started.run_id, attempt=1)
        scope = scope_values(
            workflow_id, seen.name, seen.input_data, seen.context, self._outputs_of(workflow_id)
        )
        return Ready(step, started.run_id, started.key, scope, index=seen.index, ahead=started.ahead)

    def _plain_start(
        self, workflow_id: str, seen: start_path.Unread | None, acts_at_once: Callable[[Step], bool]
    ) -> Step | None:
        """The step ``seen`` stands at, when the start path may start it: running under
        this runner's lease with no run yet (a run id was drawn) and acting at once."""
        if seen is None or seen.run_id is None:
            return None
        if workflow_id not in self._definitions and seen.definition is None:
            return None
        definition = self._definition_of(workflow_id, seen.definition)
        if seen.index >= len(definition.steps) or not acts_at_once(definition.steps[seen.index]):
            return None
        return definition.steps[seen.index]

    def _complete_and_start(
        self,
        session: Session,
        workflow: Workflow,
        run: StepRun,
        step: Step,
        output: dict[str, Any],
        next_step: Step,
        before: dict[str, Any],
        after: dict[str, Any],
        now: datetime,
    ) -> tuple[bool, Ready | None]:
        """The hot path: a step's outcome and the next step's start, in four statements.

        INSERT the next run (its idempotency key computed in the same
        statement), UPDATE this run, UPDATE the workflow, INSERT both events;
        SQLAlchemy Core, no unit of work. The ORM objects are updated as
        committed so the session has nothing left to flush.
        """
        workflow_id, run_id, index = workflow.id, run.id, workflow.current_step + 1
        next_id, next_key = self._insert_run(session, workflow_id, index, next_step, now)
        session.execute(
            update(StepRun)
            .where(StepRun.id == run_id)
            .values(status="completed", output=output, finished_at=now)
            .execution_options(synchronize_session=False)
        )
        changes: dict[str, Any] = {"current_step": index, "current_step_run_id": next_id, "updated_at": now}
        if workflow.engine_errors:
            changes["engine_errors"] = 0
        session.execute(
            update(Workflow)
            .where(Workflow.id == workflow_id)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        store.insert_runner_events(
            session,
            [
                store.event_values(
                    "step.completed",
                    self.runner_id,
                    workflow_id=workflow_id,
                    step_name=step.name,
                    before=before,
                    after=after,
                    data={"step_run_id": run_id, "attempt": run.attempt},
                    created_at=now,
                ),
                store.event_values(
                    "step.started",
                    self.runner_id,
                    workflow_id=workflow_id,
                    step_name=next_step.name,
                    data={
                        "step_run_id": next_id,
                        "index": index,
                        "type": next_step.type,
                        "idempotency_key": next_key,
                        "attempt": 1,
                    },
                    created_at=now,
                ),
            ],
        )
        for target, values in (
            (run, {"status": "completed", "output": output, "finished_at": now}),
            (workflow, changes),
        ):
            for key, value in values.items():
                set_committed_value(target, key, value)
        self._completed(workflow_id, step, run_id, run.attempt, output)
        structlog.contextvars.bind_contextvars(step=next_step.name)
        log.info("step started", step_type=next_step.type, step_run_id=next_id, attempt=1)
        return True, Ready(next_step, next_id, next_key, self._scope(workflow), index=index)

    def _insert_run(
        self, session: Session, workflow_id: str, index: int, step: Step, now: datetime
    ) -> tuple[int, str]:
        """INSERT a first attempt's step run with its idempotency key (``<workflow>/<run id>``)
        in one statement: (id, key).

        PostgreSQL draws the id from the table's sequence inside the INSERT;
        SQLite, whose writers are serialised (BEGIN IMMEDIATE), gives a new
        row the highest id plus one, which the INSERT computes and then checks.
        """
        prefix = f"{workflow_id}/"
        columns = {
            "workflow_id": literal(workflow_id, StepRun.workflow_id.type),
            "step_index": literal(index, StepRun.step_index.type),
            "step_name": literal(step.name, StepRun.step_name.type),
            "step_type": literal(step.type, StepRun.step_type.type),
            "status": literal("running", StepRun.status.type),
            "attempt": literal(1, StepRun.attempt.type),
            "started_at": literal(now, StepRun.started_at.type),
            "executed_by": literal(self.runner_id, StepRun.executed_by.type),
        }
        if self.db.is_postgres:
            drawn = select(
                func.nextval(func.pg_get_serial_sequence("step_runs", "id")).label("id")
            ).subquery()
            row = session.execute(
                insert(StepRun)
                .from_select(
                    [StepRun.id, *(getattr(StepRun, name) for name in columns), StepRun.idempotency_key],
                    select(drawn.c.id, *columns.values(), literal(prefix) + cast(drawn.c.id, String)),
                )
                .returning(StepRun.id, StepRun.idempotency_key)
            ).one()
        else:
            next_id = select(func.coalesce(func.max(StepRun.id), 0) + 1).scalar_subquery()
            row = session.execute(
                insert(StepRun)
                .values(**columns, idempotency_key=literal(prefix) + cast(next_id, String))
                .returning(StepRun.id, StepRun.idempotency_key)
            ).one()
        run_id, key = int(row[0]), str(row[1])
        if key != f"{prefix}{run_id}":  # never expected; kept right if it happens
            key = f"{prefix}{run_id}"
            session.execute(
                update(StepRun)
                .where(StepRun.id == run_id)
                .values(idempotency_key=key)
                .execution_options(synchronize_session=False)
            )
        return run_id, key

    def _hot_path(self, workflow_id: str, ready: Ready, output: dict[str, Any]) -> Ready | None:
        """A plain step's outcome and the next step's start, in four Core statements
        and one commit; None when the step is not plain or the rows changed under us
        (nothing written: the caller takes the general path, ``_complete``)."""
        step, definition = ready.step, self._plain(workflow_id, ready)
        if definition is None or ready.index + 1 >= len(definition.steps):
            return None
        next_step = definition.steps[ready.index + 1]
        if next_step.needs_approval:
            return None
        now = utcnow()
        before, after = moved_past(ready.index, step.name, ready.run_id)
        done = step_path.Finished(workflow_id, ready.index, step.name, ready.run_id, ready.attempt, output)
        with self.db.runner_engine.connect() as conn, conn.begin() as transaction:
            started = step_path.complete_and_start(
                conn,
                step_path.queries(self.db.is_postgres),
                self.runner_id,
                done,
                next_step.name,
                next_step.type,
                now,
                before,
                after,
                ready.ahead,
            )
            if started is None:
                transaction.rollback()
                return None
        self._completed(workflow_id, step, ready.run_id, ready.attempt, output)
        structlog.contextvars.bind_contextvars(step=next_step.name)
        log.info("step started", step_type=next_step.type, step_run_id=started.run_id, attempt=1)
        scope = {**ready.scope, "context": started.context}
        return Ready(
            next_step, started.run_id, started.key, scope, index=ready.index + 1, ahead=started.ahead
        )

    def _plain(self, workflow_id: str, ready: Ready) -> WorkflowDefinition | None:
        """The definition, when ``ready`` is a plain step of it (no approval, no
        checkpoint): the hot and finish paths' condition; else None."""
        step, definition = ready.step, self._definitions.get(workflow_id)
        if (
            definition is None
            or ready.index < 0
            or ready.approval is not None
            or step.type == "checkpoint"
            or step.create_checkpoint
            or ready.index >= len(definition.steps)
            or definition.steps[ready.index].name != step.name
        ):
            return None
        return definition

    def _finish_path(self, workflow_id: str, ready: Ready, output: dict[str, Any]) -> bool:
        """A plain last step's outcome and the workflow's completion in one commit
        (core.engine.finish_path); False when the step is not that or the rows changed
        under us (nothing written: the caller takes the general path)."""
        step, definition = ready.step, self._plain(workflow_id, ready)
        if definition is None or ready.index + 1 != len(definition.steps):
            return False
        before, after = moved_past(ready.index, step.name, ready.run_id)
        done = step_path.Finished(workflow_id, ready.index, step.name, ready.run_id, ready.attempt, output)
        with self.db.runner_engine.connect() as conn, conn.begin() as transaction:
            finished = finish_path.complete_and_finish(
                conn,
                self.db.is_postgres,
                self.runner_id,
                done,
                utcnow(),
                before,
                after,
                ahead=ready.ahead,
                hooks=self._webhook_row,
            )
            if finished is None:
                transaction.rollback()
                self._webhook_row = None  # perhaps changed: read again with the next finish
                return False
        queued, self._webhook_row = finished
        finish_path.after_commit(queued)
        self._completed(workflow_id, step, ready.run_id, ready.attempt, output)
        log.info("workflow completed")
        return True
