"""What every part of the step executor shares: the runner's hold on one
claimed workflow (its row locked under the lease, ``LeaseLost`` otherwise, and
the lease let go), the caches of a claim (parsed definitions, earlier outputs),
a step run's insertion and start, and ``Ready``, a step whose start is
committed and whose action may run now.

``core.engine.executor.StepExecutor`` is built from this base and one class per
concern: ``person_wait`` (asking a person and applying the answer),
``core_paths`` (a plain step's outcome in Core statements) and ``failures``
(a step that failed, an error of the engine's own).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import BigInteger, String, bindparam, select, update
from sqlalchemy.orm import Session, defer, lazyload

from core.base.errors import WorkflowNotFound, quoted
from core.definitions.workflow import Step, WorkflowDefinition
from core.engine import finish_path, start_path, step_path
from core.engine.step_outputs import StepOutputs, scope_of
from core.engine.tasks import TaskHandler, rehearsal_task
from core.engine.tools import ToolRegistry
from core.records import history
from core.records import rows as store
from core.records.trail import chain_held
from core.store.tables import StepRun, Workflow, utcnow
from core.telemetry.metrics import runner_metrics

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

__all__ = ["DEFINITION_CACHE_SIZE", "LOCK_OPTIONS", "ExecutorBase", "LeaseLost", "Ready", "moved_past"]

# The runner's locking SELECT reads neither the definition (parsed once per
# workflow and cached; it may be large) nor the outputs of earlier steps
# (read per name when a template needs one: StepOutputs).
LOCK_OPTIONS = (defer(Workflow.definition), lazyload(Workflow.output_runs))
# The locking SELECTs, built once (building them per claim cost CPU for nothing).
_WORKFLOW_ID = Workflow.id == bindparam("workflow_id", type_=String())
_LOCKED = select(Workflow).where(_WORKFLOW_ID).options(*LOCK_OPTIONS).with_for_update()
_LOCKED_WITH_DEFINITION = select(Workflow).where(_WORKFLOW_ID).options(*LOCK_OPTIONS[1:]).with_for_update()
_LOCKED_WITH_RUN = (
    select(Workflow, StepRun)
    .outerjoin(StepRun, StepRun.id == bindparam("run_id", type_=BigInteger()))
    .where(_WORKFLOW_ID)
    .options(*LOCK_OPTIONS)
    .with_for_update(of=Workflow)
)
# Parsed definitions kept per executor, by workflow id. A stored definition
# never changes, and validating it with pydantic on every step cost more than
# the step's own SQL.
DEFINITION_CACHE_SIZE = 1024


class LeaseLost(Exception):
    """Another runner owns this workflow now."""


@dataclass(frozen=True)
class Ready:
    """A step whose start is committed and whose action may run now."""

    step: Step
    run_id: int
    key: str
    scope: dict[str, Any]
    approval: dict[str, Any] | None = None
    # The step's position and the run's attempt, for the hot path (core.engine.step_path);
    # -1: unknown, take the general path.
    index: int = -1
    attempt: int = 1
    # What the previous hot step left known of the workflow (core.engine.step_path.Ahead).
    ahead: step_path.Ahead | None = None


def moved_past(index: int, step_name: str, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's ``step.completed`` before and after: the position, and its output as a
    reference to the run holding it (core.records.history folds events back into
    whole states)."""
    return (
        {"current_step": index, "step_outputs": {}},
        {"current_step": index + 1, "step_outputs": {step_name: history.output_ref(run_id)}},
    )


class ExecutorBase:
    """The executor's state and the primitives every concern uses."""

    def __init__(
        self,
        db: Database,
        registry: ToolRegistry,
        runner_id: str,
        *,
        task_handler: TaskHandler = rehearsal_task,
        pool: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.runner_id = runner_id
        self.task_handler = task_handler
        self._pool = pool or concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="countersign-step"
        )
        self.steps_executed = 0
        self._definitions: dict[str, WorkflowDefinition] = {}
        # Per claimed workflow: the earlier outputs its templates have read.
        self._outputs: dict[str, StepOutputs] = {}
        # Claimed workflows whose lease a committed transaction already let go.
        self._let_go: set[str] = set()
        # The webhook channel's stored settings as last read (PostgreSQL; None: unknown):
        # a finish that knows them needs no read of its own (core.engine.finish_path).
        self._webhook_row: finish_path.WebhookRow | None = None
        # How many workflows this runner has claimed and not started (core.engine.claim_queue).
        self.queued: Callable[[], int] = lambda: 0
        # What the claim read of a workflow it leased, for its start (PostgreSQL: once).
        self.claimed_read: Callable[[str], start_path.Unread | None] = lambda _: None

    def _outputs_of(self, workflow_id: str) -> StepOutputs:
        outputs = self._outputs.get(workflow_id)
        if outputs is None:
            outputs = self._outputs[workflow_id] = StepOutputs(self.db, workflow_id)
        return outputs

    def _scope(self, workflow: Workflow) -> dict[str, Any]:
        return scope_of(workflow, self._outputs_of(workflow.id))

    def _definition(self, workflow: Workflow) -> WorkflowDefinition:
        cached = self._definitions.get(workflow.id)
        if cached is not None:
            # Not ``workflow.definition``: the locked read leaves it unloaded once it
            # is cached, and touching it would load and decode the whole stored
            # definition again, a cost that grows with the workflow's length.
            return cached
        return self._definition_of(workflow.id, workflow.definition)

    def _definition_of(self, workflow_id: str, stored: Any) -> WorkflowDefinition:
        """The cached definition, else ``stored`` parsed and cached (it never changes)."""
        definition = self._definitions.get(workflow_id)
        if definition is None:
            definition = WorkflowDefinition.model_validate(stored)
            if len(self._definitions) >= DEFINITION_CACHE_SIZE:
                self._definitions.clear()
            self._definitions[workflow_id] = definition
        return definition

    def _locked_with_run(
        self, session: Session, workflow_id: str, run_id: int
    ) -> tuple[Workflow, StepRun | None]:
        """``_locked`` and the step run, read in one round trip."""
        row = session.execute(
            _LOCKED_WITH_RUN, {"workflow_id": str(workflow_id), "run_id": run_id}
        ).one_or_none()
        if row is None:
            raise WorkflowNotFound(f"No workflow has the id {quoted(workflow_id)}.")
        workflow, run = row
        chain_held(session, workflow.id)
        if workflow.lease_owner != self.runner_id:
            raise LeaseLost(workflow_id)
        return workflow, run

    def _locked(self, session: Session, workflow_id: str) -> Workflow:
        # The definition comes with the row when it is not cached yet (a
        # workflow's first claim here): one round trip instead of a lazy load.
        statement = _LOCKED if workflow_id in self._definitions else _LOCKED_WITH_DEFINITION
        workflow = session.scalars(statement, {"workflow_id": str(workflow_id)}).one_or_none()
        if workflow is None:
            raise WorkflowNotFound(f"No workflow has the id {quoted(workflow_id)}.")
        chain_held(session, workflow.id)
        if workflow.lease_owner != self.runner_id:
            raise LeaseLost(workflow_id)
        return workflow

    def _release(self, workflow_id: str) -> None:
        if workflow_id in self._let_go:  # the last commit let go of the lease
            self._let_go.discard(workflow_id)
            return
        # One conditional UPDATE: when the last transaction already let go,
        # it matches nothing and (on PostgreSQL) commits without a WAL flush.
        with self.db.runner_session() as session:
            self.db.commit_without_flush(session)
            session.execute(
                update(Workflow)
                .where(Workflow.id == workflow_id, Workflow.lease_owner == self.runner_id)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    def _new_run(
        self,
        session: Session,
        workflow: Workflow,
        index: int,
        step: Step,
        now: datetime | None = None,
        *,
        retry_of: StepRun | None = None,
    ) -> StepRun:
        """Insert a step run (the flush gives it the id its idempotency key needs).

        A retry (``retry_of`` the failed attempt) is the next attempt of the
        same effect: it keeps that attempt's idempotency key, so a call that
        timed out after taking effect is not repeated by the tool.
        """
        run = StepRun(
            workflow_id=workflow.id,
            step_index=index,
            step_name=step.name,
            step_type=step.type,
            status="running",
            idempotency_key="",
            started_at=now or utcnow(),
            executed_by=self.runner_id,
            attempt=retry_of.attempt + 1 if retry_of is not None else 1,
        )
        session.add(run)
        session.flush()
        run.idempotency_key = retry_of.idempotency_key if retry_of is not None else f"{workflow.id}/{run.id}"
        return run

    def _record_start(self, session: Session, workflow: Workflow, step: Step, run: StepRun) -> None:
        workflow.current_step_run_id = run.id
        structlog.contextvars.bind_contextvars(step=step.name)
        log.info("step started", step_type=step.type, step_run_id=run.id, attempt=run.attempt)
        store.append_event(
            session,
            "step.started",
            self.runner_id,
            workflow_id=workflow.id,
            step_name=step.name,
            data={
                "step_run_id": run.id,
                "index": run.step_index,
                "type": step.type,
                "idempotency_key": run.idempotency_key,
                "attempt": run.attempt,
            },
        )

    def _completed(
        self, workflow_id: str, step: Step, run_id: int, attempt: int, output: dict[str, Any]
    ) -> None:
        """After a Core path committed a step's outcome: the output kept for the next
        steps' templates, the counters and the log line the general path's ``_complete``
        also writes."""
        self._outputs_of(workflow_id).record(step.name, output)
        self.steps_executed += 1
        runner_metrics.step(step.type, "completed")
        log.info("step completed", step=step.name, step_type=step.type, step_run_id=run_id, attempt=attempt)
