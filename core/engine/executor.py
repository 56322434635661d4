"""Executing the steps of one claimed workflow.

Every step is recorded before its action runs (a ``StepRun`` row committed
with a ``step.started`` event) and its outcome is committed with its event in
one transaction before the next step starts. Each write checks that this
runner still holds the workflow's lease; a runner that lost it (it stalled
past the lease and another took over) stops without writing.

The executor is one class built from a shared base (``executor_base``) and one
class per concern: ``person_wait``, ``core_paths`` and ``failures``; this module
holds the loop over a claimed workflow and the general path of a step. What a
task handler gets and may raise is in ``tasks``; earlier outputs in
``step_outputs``.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
import time
from functools import partial
from typing import Any

import structlog
from sqlalchemy.orm import Session

from core.base.errors import CallNotReleased, InvalidTransition, UnstorableOutput
from core.base.retry import is_database_unavailable
from core.base.storable import unstorable
from core.definitions.calls import verify_call
from core.definitions.workflow import Step
from core.engine import step_path
from core.engine.checkpoints import take_checkpoint
from core.engine.core_paths import CorePaths
from core.engine.decisions import asked_by_task, released_at_once
from core.engine.executor_base import LeaseLost, Ready, moved_past
from core.engine.failures import Failures, until_database_answers
from core.engine.person_wait import PersonWait
from core.engine.step_outputs import StepOutputs, scope_of
from core.engine.tasks import AwaitApproval, TaskHandler, TaskRequest, rehearsal_task
from core.engine.tools import ToolContext, render_args
from core.records import rows as store
from core.store.tables import ApprovalRequest, StepRun, Workflow, utcnow
from core.telemetry import tracing
from core.telemetry.metrics import runner_metrics
from core.telemetry.tracing import span

log = structlog.get_logger(__name__)

__all__ = [
    "CLAIM_TIME_SLICE",
    "MAX_STEPS_PER_CLAIM",
    "PURE_STEP_TYPES",
    "AwaitApproval",
    "StepExecutor",
    "TaskHandler",
    "TaskRequest",
    "rehearsal_task",
    "scope_of",
    "steps_per_claim",
]

# Steps (COUNTERSIGN_STEPS_PER_CLAIM) and seconds one claim may run before the
# workflow goes back in the queue, so one long workflow cannot starve the others.
MAX_STEPS_PER_CLAIM = 50
STEPS_PER_CLAIM_ENV = "COUNTERSIGN_STEPS_PER_CLAIM"
CLAIM_TIME_SLICE = 2.0
# Step types whose "action" only reports what is already in the database.
PURE_STEP_TYPES = ("approval", "checkpoint")


class StepExecutor(PersonWait, CorePaths, Failures):
    """Runs the steps of the workflows a runner claims (see the module's docstring)."""

    def run_claimed(self, workflow_id: str) -> None:
        """Run steps until the workflow waits, finishes, pauses or is handed back."""
        # Every log line below (channels and tools included) names the
        # workflow, the runner acting, and the step once one is bound.
        with (
            structlog.contextvars.bound_contextvars(workflow_id=workflow_id, actor=self.runner_id),
            tracing.workflow_context(self.db, workflow_id),
        ):
            try:
                self._run_claimed(workflow_id)
            finally:
                self._outputs.pop(workflow_id, None)
                structlog.contextvars.unbind_contextvars("step", "approval_id")

    def _run_claimed(self, workflow_id: str) -> None:
        log_ = log.bind(runner=self.runner_id)
        try:
            # Each outcome's transaction also starts the next step, so a
            # step costs one commit; the last one of a claim starts none, so
            # the hand-back below leaves no started step behind.
            ready: Ready | None = None
            steps, taken = steps_per_claim(), 0
            deadline = time.monotonic() + CLAIM_TIME_SLICE
            while True:
                taken += 1
                last = taken >= steps or time.monotonic() >= deadline
                if last and not self.queued() and not step_path.another_is_waiting(self.db, workflow_id):
                    # Nobody else is waiting: a hand-back would only cost this
                    # workflow a re-claim. The slice starts over.
                    taken, deadline, last = 0, time.monotonic() + CLAIM_TIME_SLICE, False
                go_on, ready = self._advance(workflow_id, ready, start_next=not last)
                if not go_on:
                    return
                if last:
                    break
            with self.db.runner_session() as session:  # hand back for fairness
                workflow = self._locked(session, workflow_id)
                if workflow.status == "running":
                    store.schedule(session, workflow)
            self._let_go.add(workflow_id)
        except LeaseLost:
            log_.warning("lease lost; another runner has this workflow")
        except Exception as exc:
            if is_database_unavailable(exc):
                raise
            self._engine_error(workflow_id, exc)
        finally:
            self._release(workflow_id)

    def _advance(
        self, workflow_id: str, ready: Ready | None = None, *, start_next: bool = True
    ) -> tuple[bool, Ready | None]:
        """Run (or continue) the current step: (go on?, the next step if already started).

        ``ready`` is a step whose start the previous outcome's transaction
        committed; without it the current step is looked up (and started,
        resumed or continued after a decision) in a transaction of its own.
        """
        if ready is None and self.db.is_postgres:
            # A claimed workflow's plain first step, started without a locking read
            # first (core.engine.start_path): two round trips instead of four.
            ready = self._start_unread(workflow_id, _acts_at_once)
        if ready is None:
            with self.db.runner_session() as session:
                workflow = self._locked(session, workflow_id)
                if workflow.status != "running":
                    return False, None
                definition = self._definition(workflow)
                if workflow.current_step >= len(definition.steps):
                    store.transition_workflow(session, workflow, "completed", self.runner_id)
                    return False, None
                step = definition.steps[workflow.current_step]
                structlog.contextvars.bind_contextvars(step=step.name)
                if workflow.current_step_run_id is None and _acts_at_once(step):
                    ready = self._start_plain(session, workflow, step)
                else:
                    run_id = workflow.current_step_run_id
                    run = session.get(StepRun, run_id) if run_id else None
                    if run is None:
                        run, asks = self._start_step(session, workflow, step)
                        if asks:
                            self._request_step_approval(session, workflow, step, run)
                            # Released at once by a standing rule: go on to the decision.
                            return released_at_once(workflow, run), None
                    elif run.status == "waiting_approval" and asked_by_task(session, run):
                        approval = session.get(ApprovalRequest, run.approval_id)
                        if approval is None or approval.status == "pending":
                            store.transition_workflow(session, workflow, "waiting_approval", self.runner_id)
                            return False, None
                        runner_metrics.resumed(approval.decided_at)
                        log.info(
                            "resuming task after decision", approval_id=approval.id, outcome=approval.status
                        )
                        run.status = "running"
                    elif run.status == "waiting_approval":
                        go_on = self._apply_decision(session, workflow, definition, step, run)
                        if go_on is not None:
                            return go_on, None
                    elif run.status == "failed":
                        if workflow.error:  # its last attempt failed while the workflow was paused
                            store.transition_workflow(
                                session, workflow, "failed", self.runner_id, reason=workflow.error
                            )
                            return False, None
                        run = self._start_retry(session, workflow, step, run)
                    elif run.status != "running":
                        # No state the engine leaves behind (a run changed by hand, say):
                        # running the step again would repeat its action under the same
                        # key on every claim. An engine error: retried a few times, then
                        # the step fails, naming the run.
                        raise InvalidTransition(
                            f"Step {step.name!r}'s current run {run.id} is {run.status}, not running: "
                            "it is not run again."
                        )
                    else:
                        log.info(
                            "step resumed after an interruption", step_run_id=run.id, attempt=run.attempt
                        )
                        store.append_event(
                            session,
                            "step.resumed",
                            self.runner_id,
                            workflow_id=workflow.id,
                            step_name=step.name,
                            data={
                                "step_run_id": run.id,
                                "attempt": run.attempt,
                                "idempotency_key": run.idempotency_key,
                            },
                        )
                    ready = Ready(
                        step,
                        run.id,
                        run.idempotency_key,
                        self._scope(workflow),
                        self._approval_summary(session, run),
                        index=workflow.current_step,
                        attempt=run.attempt,
                    )
                    if step.type in PURE_STEP_TYPES:
                        # No action to run outside a transaction: the outcome (and
                        # the next step's start) commits with the decision or the
                        # start just recorded, one commit fewer before resuming.
                        with span(
                            f"step {step.name}",
                            workflow_id=workflow_id,
                            step=step.name,
                            step_type=step.type,
                            step_run_id=run.id,
                        ):
                            output = self._perform(
                                workflow_id, step, ready.scope, ready.key, ready.approval, run.id
                            )
                        return self._complete(session, workflow, run, step, output, start_next=start_next)

        step, run_id = ready.step, ready.run_id
        try:
            with span(
                f"step {step.name}",
                workflow_id=workflow_id,
                step=step.name,
                step_type=step.type,
                step_run_id=run_id,
            ):
                output = self._perform(workflow_id, step, ready.scope, ready.key, ready.approval, run_id)
        except AwaitApproval as ask:
            return until_database_answers(partial(self._park, workflow_id, step, run_id, ask)), None
        except Exception as exc:  # noqa: BLE001 - any failure of user code is a step failure
            until_database_answers(partial(self._record_failure, workflow_id, step, run_id, exc))
            return False, None
        return until_database_answers(
            partial(
                self._record_success, workflow_id, step, run_id, output, start_next=start_next, ready=ready
            )
        )

    def _start_step(self, session: Session, workflow: Workflow, step: Step) -> tuple[StepRun, bool]:
        """Record the step's start: (its run, whether a person is asked before it acts)."""
        asks = self._asks(session, workflow, step)
        if asks:
            take_checkpoint(
                session,
                workflow,
                f"before:{step.name}",
                self.runner_id,
                description="automatic, before approval",
                step_name=step.name,
            )
        run = self._new_run(session, workflow, workflow.current_step, step)
        self._record_start(session, workflow, step, run)
        return run, asks

    def _start_retry(self, session: Session, workflow: Workflow, step: Step, failed: StepRun) -> StepRun:
        """The next attempt of a step whose retry came due; counts on from ``failed``."""
        run = self._new_run(session, workflow, workflow.current_step, step, retry_of=failed)
        if step.needs_approval and not asked_by_task(session, failed):
            run.approval_id = failed.approval_id  # already approved: not asked again
        self._record_start(session, workflow, step, run)
        return run

    def _perform(
        self,
        workflow_id: str,
        step: Step,
        scope: dict[str, Any],
        key: str,
        approval: dict[str, Any] | None,
        run_id: int = 0,
    ) -> dict[str, Any]:
        if step.type == "checkpoint":
            return {"checkpoint": step.name}
        if step.type == "approval":
            return {"approval": approval}
        if step.type == "tool":
            assert step.tool is not None
            tool_name = step.tool
            guarded = approval is not None and "call" in approval

            def action() -> dict[str, Any]:
                if guarded:
                    # The call the decision released, verbatim: never rendered again.
                    assert approval is not None
                    if approval.get("call_refused"):
                        raise CallNotReleased(approval["call_refused"])
                    _, args = verify_call(approval["call"], tool=tool_name)
                else:
                    args = render_args(step.args, scope)
                return self.registry.call(tool_name, args, ToolContext(workflow_id, step.name, key))
        else:
            asked_by_task = approval is not None and approval.get("origin") == "task"
            steps = scope.get("steps")
            if isinstance(steps, StepOutputs):  # an agent is shown every earlier output
                scope = {**scope, "steps": steps.everything()}
            request = TaskRequest(
                workflow_id,
                step,
                {**scope, "step": step.context},
                key,
                self.registry,
                step_run_id=run_id,
                decision=approval if asked_by_task else None,
            )

            def action() -> dict[str, Any]:
                return self.task_handler(request)

        if step.timeout is None:
            output = action()
        else:
            # The copied context keeps the step span current in the pool thread.
            future = self._pool.submit(contextvars.copy_context().run, action)
            try:
                output = future.result(timeout=step.timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"step timed out after {step.timeout:g}s") from None
        # What a tool or an agent returned is input like any other: refused here, the
        # step failing once with where it is wrong, rather than by the database at
        # commit (PostgreSQL), which would run the step again (or stored by SQLite).
        if problems := unstorable(output, "output"):
            raise UnstorableOutput(problems)
        if approval is not None and approval.get("origin") != "task":
            output = {**output, "approval": approval}
        return output

    def _record_success(
        self,
        workflow_id: str,
        step: Step,
        run_id: int,
        output: dict[str, Any],
        *,
        start_next: bool = True,
        ready: Ready | None = None,
    ) -> tuple[bool, Ready | None]:
        if ready is not None and start_next:
            started = self._hot_path(workflow_id, ready, output)
            if started is not None:
                return True, started
        if ready is not None and self._finish_path(workflow_id, ready, output):
            self._let_go.add(workflow_id)  # the finish let go of the lease
            return False, None
        with self.db.runner_session() as session:
            workflow, run = self._locked_with_run(session, workflow_id, run_id)
            assert run is not None
            result = self._complete(session, workflow, run, step, output, start_next=start_next)
            let_go = workflow.lease_owner is None  # _start_next let go of the lease
        if let_go:  # committed: _release has nothing left to do
            self._let_go.add(workflow_id)
        return result

    def _complete(
        self,
        session: Session,
        workflow: Workflow,
        run: StepRun,
        step: Step,
        output: dict[str, Any],
        *,
        start_next: bool = True,
    ) -> tuple[bool, Ready | None]:
        """Record a step's outcome (the caller holds the workflow's lock)."""
        workflow_id, run_id = workflow.id, run.id
        if run.status != "running" or workflow.current_step_run_id != run_id:
            return False, None  # rolled back or cancelled under us: drop the outcome
        now = utcnow()
        takes_checkpoint = step.type == "checkpoint" or step.create_checkpoint
        next_step, next_run = None, None
        # The event records what changed: the position, and this step's
        # output as a reference to the run holding it (core.records.history folds
        # events back into whole states); a decision's entry in the context
        # is recorded with the step it released.
        before, after = moved_past(workflow.current_step, step.name, run_id)
        decided = (workflow.context.get("approvals") or {}) if run.approval_id else {}
        if step.name in decided:
            after["context"] = {"approvals": decided}
        if start_next and workflow.status == "running":
            definition = self._definition(workflow)
            if workflow.current_step + 1 < len(definition.steps):
                next_step = definition.steps[workflow.current_step + 1]
            if next_step is not None and not next_step.needs_approval:
                if not takes_checkpoint:
                    return self._complete_and_start(
                        session, workflow, run, step, output, next_step, before, after, now
                    )
                # Inserted while nothing else is dirty, so the flush that
                # gives it an id writes this row alone; the checkpoint's
                # watermark is this step's run, given below.
                next_run = self._new_run(session, workflow, workflow.current_step + 1, next_step, now)
        run.status = "completed"
        run.output = output
        run.finished_at = now
        self._outputs_of(workflow_id).record(step.name, output)
        if workflow.engine_errors:
            workflow.engine_errors = 0
        workflow.current_step += 1
        workflow.current_step_run_id = next_run.id if next_run is not None else None
        workflow.updated_at = now
        if takes_checkpoint:
            # Its outputs are this run's and those before it (the next
            # step's run, already inserted, is not under the watermark).
            take_checkpoint(
                session,
                workflow,
                step.name if step.type == "checkpoint" else f"after:{step.name}",
                self.runner_id,
                description=step.description,
                step_name=step.name,
                watermark=run_id,
            )
        store.append_event(
            session,
            "step.completed",
            self.runner_id,
            workflow_id=workflow_id,
            step_name=step.name,
            before=before,
            after=after,
            data={"step_run_id": run_id, "attempt": run.attempt},
        )
        self.steps_executed += 1
        runner_metrics.step(step.type, "completed")
        log.info(
            "step completed", step=step.name, step_type=step.type, step_run_id=run_id, attempt=run.attempt
        )
        if workflow.status != "running":
            return False, None
        if not start_next:
            return True, None
        if next_step is not None and next_run is not None:
            self._record_start(session, workflow, next_step, next_run)
            return True, Ready(
                next_step,
                next_run.id,
                next_run.idempotency_key,
                self._scope(workflow),
                index=workflow.current_step,
            )
        return self._start_next(session, workflow)

    def _start_next(self, session: Session, workflow: Workflow) -> tuple[bool, Ready | None]:
        """In the outcome's transaction: finish the workflow, or start its next step.

        The next step's start (or its approval request) commits with the
        previous outcome, still before the step's action runs. When the
        workflow stops here the lease is let go in the same transaction.
        """
        definition = self._definition(workflow)
        if workflow.current_step >= len(definition.steps):
            store.transition_workflow(session, workflow, "completed", self.runner_id)
            log.info("workflow completed")
            workflow.lease_owner = workflow.lease_expires_at = None
            return False, None
        step = definition.steps[workflow.current_step]
        run, asks = self._start_step(session, workflow, step)
        if asks:
            self._request_step_approval(session, workflow, step, run)
            if released_at_once(workflow, run):
                store.schedule(session, workflow)  # a standing rule released it: runnable now
                return False, None
            workflow.lease_owner = workflow.lease_expires_at = None
            return False, None
        return True, Ready(
            step, run.id, run.idempotency_key, self._scope(workflow), index=workflow.current_step
        )


def steps_per_claim() -> int:
    """``COUNTERSIGN_STEPS_PER_CLAIM`` (default ``MAX_STEPS_PER_CLAIM``), at least 1."""
    raw = os.environ.get(STEPS_PER_CLAIM_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else MAX_STEPS_PER_CLAIM
    except ValueError:
        return MAX_STEPS_PER_CLAIM


def _acts_at_once(step: Step) -> bool:
    """A step that asks nobody and acts outside the transaction: its start may take
    the start path (core.engine.start_path)."""
    return step.approval_gate is None and not step.needs_approval and step.type not in PURE_STEP_TYPES
