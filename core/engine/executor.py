"""Executing the steps of one claimed workflow.

Every step is recorded before its action runs (a ``StepRun`` row committed
with a ``step.started`` event) and its outcome is committed with its event in
one transaction before the next step starts. Each write checks that this
runner still holds the workflow's lease; a runner that lost it (it stalled
past the lease and another took over) stops without writing.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import tenacity
from sqlalchemy import String, cast, func, insert, literal, select, update
from sqlalchemy.orm import Session, defer, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from core.approvals.engine import is_approving, open_approval
from core.base.errors import (
    CallNotReleased,
    InvalidTransition,
    ToolNotFound,
    UnstorableOutput,
    WorkflowNotFound,
)
from core.base.retry import first_line, is_database_unavailable, is_transient
from core.base.storable import unstorable
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import make_call, verify_call
from core.definitions.gates import needs_person
from core.definitions.workflow import Step, WorkflowDefinition
from core.engine import finish_path, start_path, step_path
from core.engine.checkpoints import take_checkpoint
from core.engine.tools import ToolContext, ToolRegistry, render_args
from core.records import history
from core.records import rows as store
from core.records.trail import chain_held
from core.store.tables import (
    ApprovalRequest,
    ApprovalResponse,
    StepRun,
    Workflow,
    WorkflowEvent,
    output_visible_now,
    outputs_query,
    utcnow,
)
from core.telemetry import tracing
from core.telemetry.metrics import runner_metrics
from core.telemetry.tracing import span

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

# Steps (COUNTERSIGN_STEPS_PER_CLAIM) and seconds one claim may run before the
# workflow goes back in the queue, so one long workflow cannot starve the others.
MAX_STEPS_PER_CLAIM = 50
STEPS_PER_CLAIM_ENV = "COUNTERSIGN_STEPS_PER_CLAIM"
CLAIM_TIME_SLICE = 2.0
# An error Countersign's own code raises while advancing a step (not the
# tool's failure) is tried this many times in all, ENGINE_ERROR_BACKOFF
# seconds apart (doubling); then the step and the workflow fail with it.
ENGINE_ERROR_ATTEMPTS = 3
ENGINE_ERROR_BACKOFF = 1.0
# Parsed definitions kept per executor, by workflow id. A stored definition
# never changes, and validating it with pydantic on every step cost more than
# the step's own SQL.
DEFINITION_CACHE_SIZE = 1024
# Step types whose "action" only reports what is already in the database.
PURE_STEP_TYPES = ("approval", "checkpoint")
# A step's outcome is committed after its action ran; while the database is
# unreachable the commit is tried again (0.5 s doubling to 5 s) for up to a
# minute, then the workflow is left to lease recovery (the step runs again
# with the same idempotency key).
OUTCOME_RETRY_INITIAL = 0.5
OUTCOME_RETRY_MAX = 5.0
OUTCOME_RETRY_SECONDS = 60.0

_T = TypeVar("_T")

# The runner's locking SELECT reads neither the definition (parsed once per
# workflow and cached; it may be large) nor the outputs of earlier steps
# (read per name when a template needs one: StepOutputs).
LOCK_OPTIONS = (defer(Workflow.definition), lazyload(Workflow.output_runs))


@dataclass(frozen=True)
class TaskRequest:
    """What a task handler gets: the step and everything it may read.

    ``step_run_id`` identifies this execution of the step (an agent keeps its
    saved memory under it). ``decision`` is set when the handler is called
    again after a person answered the approval it asked for.
    """

    workflow_id: str
    step: Step
    scope: dict[str, Any]
    idempotency_key: str
    registry: ToolRegistry
    step_run_id: int = 0
    decision: dict[str, Any] | None = None


class AwaitApproval(Exception):
    """Raised by a task handler to park the step until a person answers.

    The executor opens the approval request, marks the step and workflow as
    waiting, and releases the workflow: no thread waits. After the decision
    (whatever it is) the handler is called again for the same step run with
    ``TaskRequest.decision`` set; it decides what a rejection means.
    """

    def __init__(
        self,
        config: ApprovalConfig,
        *,
        title: str,
        proposed_action: dict[str, Any] | None = None,
        call: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.config = config
        self.title = title
        self.proposed_action = proposed_action or {}
        # The call the request guards (core.definitions.calls.make_call), None for a question.
        self.call = call


TaskHandler = Callable[[TaskRequest], dict[str, Any]]


def rehearsal_task(request: TaskRequest) -> dict[str, Any]:
    """Stand-in for an agent when none is configured: deterministic, labelled.

    It runs the step's declared ``plan`` of tool calls in order and reports
    them; it never pretends to be a language model.
    """
    calls = []
    for index, call in enumerate(request.step.plan or []):
        args = render_args(call.get("args", {}), request.scope)
        result = request.registry.call(
            call["tool"],
            args,
            ToolContext(request.workflow_id, request.step.name, f"{request.idempotency_key}/{index}"),
        )
        calls.append({"tool": call["tool"], "args": args, "result": result})
    return {
        "result": f"Rehearsed: {request.step.task or request.step.name}",
        "rehearsal": True,
        "tool_calls": calls,
    }


class LeaseLost(Exception):
    """Another runner owns this workflow now."""


@dataclass(frozen=True)
class _Ready:
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


class StepOutputs(dict[str, Any]):
    """The outputs of a workflow's earlier steps, as templates read them.

    ``${steps.x.key}`` looks ``x`` up here: its output is read from the step
    run holding it on first use (one small SELECT), then kept for the rest
    of the claim, and each step completed in the claim is recorded as it
    completes. Nothing here grows with the number of earlier steps that no
    template names. ``everything()`` is the whole mapping (a task's agent is
    shown every earlier output).
    """

    def __init__(self, db: Database, workflow_id: str) -> None:
        super().__init__()
        self._db = db
        self._workflow_id = workflow_id
        self._absent: set[str] = set()

    def _has(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if dict.__contains__(self, name):
            return True
        if name in self._absent:
            return False
        with self._db.read() as session:
            row = session.execute(
                select(StepRun.output)
                .where(
                    StepRun.workflow_id == self._workflow_id, StepRun.step_name == name, output_visible_now()
                )
                .order_by(StepRun.id.desc())
                .limit(1)
            ).first()
        if row is None:
            self._absent.add(name)
            return False
        dict.__setitem__(self, name, row[0])
        return True

    def __contains__(self, name: object) -> bool:
        return self._has(name)

    def __getitem__(self, name: str) -> Any:
        if not self._has(name):
            raise KeyError(name)
        return dict.__getitem__(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return dict.__getitem__(self, name) if self._has(name) else default

    def record(self, name: str, output: Any) -> None:
        """A step of this claim completed with ``output``."""
        dict.__setitem__(self, name, output)
        self._absent.discard(name)

    def everything(self) -> dict[str, Any]:
        with self._db.read() as session:
            outputs: dict[str, Any] = dict(session.execute(outputs_query(self._workflow_id)).all())
        # Whatever this claim recorded is newest (and may not be committed yet).
        return {**outputs, **dict(self.items())}


def scope_of(workflow: Workflow, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What templates and agents may read: input, context, earlier outputs, workflow."""
    return {
        "input": workflow.input_data,
        "context": workflow.context,
        "steps": workflow.step_outputs if outputs is None else outputs,
        "workflow": {"id": workflow.id, "name": workflow.name},
    }


class StepExecutor:
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
        # How many workflows this runner has claimed and not started (core.engine.claim_queue).
        self.queued: Callable[[], int] = lambda: 0

    def _outputs_of(self, workflow_id: str) -> StepOutputs:
        outputs = self._outputs.get(workflow_id)
        if outputs is None:
            outputs = self._outputs[workflow_id] = StepOutputs(self.db, workflow_id)
        return outputs

    def _scope(self, workflow: Workflow) -> dict[str, Any]:
        return scope_of(workflow, self._outputs_of(workflow.id))

    def _definition(self, workflow: Workflow) -> WorkflowDefinition:
        definition = self._definitions.get(workflow.id)
        if definition is None:
            definition = WorkflowDefinition.model_validate(workflow.definition)
            if len(self._definitions) >= DEFINITION_CACHE_SIZE:
                self._definitions.clear()
            self._definitions[workflow.id] = definition
        return definition

    # -- the loop over one claimed workflow ---------------------------------

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
            ready: _Ready | None = None
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

    def _engine_error(self, workflow_id: str, exc: Exception) -> None:
        """Our own code raised while advancing the workflow: retry a few times, then fail.

        A poison workflow (a definition or state the engine cannot handle)
        must not be claimed again in a tight loop: each attempt is logged
        once and recorded as an ``engine.error`` event, the next comes after a
        backoff, and after ``ENGINE_ERROR_ATTEMPTS`` the current step and the
        workflow fail with the error (which raises the workflow_failed alert).
        """
        error = f"{type(exc).__name__}: {exc}"
        with self.db.session() as session:
            workflow = self._locked(session, workflow_id)
            workflow.engine_errors = attempt = (workflow.engine_errors or 0) + 1
            step_name = None
            definition = self._definition(workflow)
            if workflow.current_step < len(definition.steps):
                step_name = definition.steps[workflow.current_step].name
            store.append_event(
                session,
                "engine.error",
                self.runner_id,
                workflow_id=workflow_id,
                step_name=step_name,
                data={"error": error[:2000], "attempt": attempt, "max_attempts": ENGINE_ERROR_ATTEMPTS},
            )
            if attempt < ENGINE_ERROR_ATTEMPTS:
                delay = ENGINE_ERROR_BACKOFF * 2 ** (attempt - 1)
                log.error("engine error; will try again", error=first_line(exc), attempt=attempt, delay=delay)
                if workflow.status == "running":
                    store.schedule(session, workflow, delay=delay)
                return
            log.error("engine error; the step fails", error=first_line(exc), attempt=attempt)
            reason = (
                f"Step {step_name!r} could not be advanced: {error}"
                if step_name
                else f"The workflow could not be advanced: {error}"
            )
            workflow.error = reason[:4000]
            run = session.get(StepRun, workflow.current_step_run_id) if workflow.current_step_run_id else None
            if run is not None and run.status in ("running", "waiting_approval"):
                run.status = "failed"
                run.error = workflow.error
                run.finished_at = utcnow()
            if workflow.status in ("running", "waiting_approval"):
                store.transition_workflow(session, workflow, "failed", self.runner_id, reason=workflow.error)

    def _locked_with_run(
        self, session: Session, workflow_id: str, run_id: int
    ) -> tuple[Workflow, StepRun | None]:
        """``_locked`` and the step run, read in one round trip."""
        row = session.execute(
            select(Workflow, StepRun)
            .outerjoin(StepRun, StepRun.id == run_id)
            .where(Workflow.id == str(workflow_id))
            .options(*LOCK_OPTIONS)
            .with_for_update(of=Workflow)
        ).one_or_none()
        if row is None:
            raise WorkflowNotFound(f"No workflow has the id {workflow_id!r}.")
        workflow, run = row
        chain_held(session, workflow.id)
        if workflow.lease_owner != self.runner_id:
            raise LeaseLost(workflow_id)
        return workflow, run

    def _locked(self, session: Session, workflow_id: str) -> Workflow:
        # The definition comes with the row when it is not cached yet (a
        # workflow's first claim here): one round trip instead of a lazy load.
        options = LOCK_OPTIONS if workflow_id in self._definitions else LOCK_OPTIONS[1:]
        workflow = session.scalars(
            select(Workflow).where(Workflow.id == str(workflow_id)).options(*options).with_for_update()
        ).one_or_none()
        if workflow is None:
            raise WorkflowNotFound(f"No workflow has the id {workflow_id!r}.")
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

    def _advance(
        self, workflow_id: str, ready: _Ready | None = None, *, start_next: bool = True
    ) -> tuple[bool, _Ready | None]:
        """Run (or continue) the current step: (go on?, the next step if already started).

        ``ready`` is a step whose start the previous outcome's transaction
        committed; without it the current step is looked up (and started,
        resumed or continued after a decision) in a transaction of its own.
        """
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
                            return _released_at_once(workflow, run), None
                    elif run.status == "waiting_approval" and _asked_by_task(session, run):
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
                    ready = _Ready(
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
            return _until_database_answers(partial(self._park, workflow_id, step, run_id, ask)), None
        except Exception as exc:  # noqa: BLE001 - any failure of user code is a step failure
            _until_database_answers(partial(self._record_failure, workflow_id, step, run_id, exc))
            return False, None
        return _until_database_answers(
            partial(
                self._record_success, workflow_id, step, run_id, output, start_next=start_next, ready=ready
            )
        )

    # -- phases ---------------------------------------------------------------

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

    def _start_plain(self, session: Session, workflow: Workflow, step: Step) -> _Ready:
        """Start a step that acts at once, in the transaction that locked the workflow
        (core.engine.start_path): the ORM workflow is left as committed."""
        now = utcnow()
        started = start_path.start_plain(
            session.connection(),
            self.db.is_postgres,
            self.runner_id,
            workflow_id=workflow.id,
            index=workflow.current_step,
            step_name=step.name,
            step_type=step.type,
            now=now,
        )
        set_committed_value(workflow, "current_step_run_id", started.run_id)
        set_committed_value(workflow, "updated_at", now)
        log.info("step started", step_type=step.type, step_run_id=started.run_id, attempt=1)
        return _Ready(
            step,
            started.run_id,
            started.key,
            self._scope(workflow),
            index=workflow.current_step,
            ahead=started.ahead,
        )

    def _asks(self, session: Session, workflow: Workflow, step: Step) -> bool:
        """Whether the step needs a person: always, never, or as its gate says for this call.

        A conditional gate (``requires_approval: {when: ...}``) is evaluated on
        the call as it would run; when it is false the step acts at once and
        the audit trail says why (``approval.not_required``). A gate that
        cannot be evaluated asks (core.definitions.gates fails closed).
        """
        gate = step.approval_gate
        if gate is None:
            return step.needs_approval
        scope = self._scope(workflow)
        try:
            arguments = render_args(step.args, scope)
        except KeyError:
            return True  # the request itself will say which value is missing
        asks, why = needs_person(gate, {**scope, "args": arguments, "tool": step.tool})
        if not asks:
            store.append_event(
                session,
                "approval.not_required",
                self.runner_id,
                workflow_id=workflow.id,
                step_name=step.name,
                data={"reason": why, "tool": step.tool, "arguments": arguments},
            )
            log.info("approval not required", step=step.name, reason=why)
        return asks

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

    def _start_retry(self, session: Session, workflow: Workflow, step: Step, failed: StepRun) -> StepRun:
        """The next attempt of a step whose retry came due; counts on from ``failed``."""
        run = self._new_run(session, workflow, workflow.current_step, step, retry_of=failed)
        if step.needs_approval and not _asked_by_task(session, failed):
            run.approval_id = failed.approval_id  # already approved: not asked again
        self._record_start(session, workflow, step, run)
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

    def _request_step_approval(self, session: Session, workflow: Workflow, step: Step, run: StepRun) -> None:
        assert step.approval_config is not None
        config = step.approval_config
        scope = self._scope(workflow)
        call = None
        if step.type == "tool":
            # The call is rendered once, here: what the approver sees is what
            # a decision releases and what runs, never re-rendered later.
            assert step.tool is not None
            try:
                arguments = render_args(step.args, scope)
                schema = self.registry.get(step.tool).input_schema
            except (KeyError, ToolNotFound) as exc:
                missing = f"${{{exc.args[0]}}} has no value" if isinstance(exc, KeyError) else str(exc)
                self._fail_in_place(
                    session,
                    workflow,
                    step,
                    run,
                    f"Step {step.name!r}: cannot ask for approval of its call: {missing}.",
                )
                return
            call = make_call(step.tool, arguments, schema)
        self._wait_for_person(
            session,
            workflow,
            step,
            run,
            config,
            title=config.title or step.name.replace("_", " ").capitalize(),
            proposed_action=_proposed_action(step, scope, config.show),
            call=call,
        )

    def _fail_in_place(
        self, session: Session, workflow: Workflow, step: Step, run: StepRun, error: str
    ) -> None:
        """Fail a step before its action could run (the caller holds the workflow's lock)."""
        run.status = "failed"
        run.error = error
        run.finished_at = utcnow()
        workflow.error = error
        runner_metrics.step(step.type, "failed")
        log.error("step failed", step=step.name, error=error, attempt=run.attempt)
        store.append_event(
            session,
            "step.failed",
            self.runner_id,
            workflow_id=workflow.id,
            step_name=step.name,
            data={"error": error, "attempt": run.attempt, "transient": False},
        )
        if workflow.status == "running":
            store.transition_workflow(session, workflow, "failed", self.runner_id, reason=error)

    def _wait_for_person(
        self,
        session: Session,
        workflow: Workflow,
        step: Step,
        run: StepRun,
        config: ApprovalConfig,
        *,
        title: str,
        proposed_action: dict[str, Any],
        call: dict[str, Any] | None = None,
    ) -> None:
        """Open the request, park the step run and the workflow (same transaction)."""
        approval = open_approval(
            session,
            config=config,
            title=title,
            requested_by=workflow.created_by,
            workflow=workflow,
            step_name=step.name,
            step_run_id=run.id,
            proposed_action=proposed_action,
            context={**workflow.context, **step.context},
            call=call,
        )
        run.status = "waiting_approval"
        run.approval_id = approval.id
        log.info(
            "approval requested",
            approval_id=approval.id,
            approval_type=approval.approval_type,
            origin=proposed_action.get("origin", "step"),
        )
        runner_metrics.step(step.type, "waiting_approval")
        if approval.status != "pending":
            # A standing rule released the call (core.approvals.standing_rules): nobody is waited for;
            # the decision is applied, and its released call checked, as any other.
            log.info(
                "approval released by a standing rule",
                approval_id=approval.id,
                decided_by=approval.decided_by,
            )
            return
        if workflow.status == "running":
            store.transition_workflow(
                session,
                workflow,
                "waiting_approval",
                self.runner_id,
                data={"approval_id": approval.id, "step": step.name},
            )

    def _apply_decision(
        self,
        session: Session,
        workflow: Workflow,
        definition: WorkflowDefinition,
        step: Step,
        run: StepRun,
    ) -> bool | None:
        """After a decision: None to run the step's action, else the loop's answer."""
        approval = session.get(ApprovalRequest, run.approval_id)
        assert approval is not None
        if approval.status == "pending":
            store.transition_workflow(session, workflow, "waiting_approval", self.runner_id)
            return False
        decision = _decision_of(session, approval)
        runner_metrics.resumed(approval.decided_at)
        log.info(
            "resuming after decision",
            approval_id=approval.id,
            outcome=approval.status,
            decided_by=approval.decided_by,
        )
        prior = workflow.context.get("approvals")
        approvals = dict(prior or {})
        approvals[step.name] = decision
        workflow.context = {**workflow.context, "approvals": approvals}
        if is_approving(approval.status):
            run.status = "running"
            return None
        action = step.on_reject.action
        run.status = "skipped" if action != "fail" else "failed"
        run.finished_at = utcnow()
        run.output = {"approval": decision}
        runner_metrics.step(step.type, run.status)
        log.info(f"step {run.status}", reason=f"approval {approval.status}", on_reject=action)
        position = workflow.current_step
        if action == "goto":
            assert step.on_reject.target is not None
            position = definition.step_index(step.on_reject.target)
        elif action != "fail":
            position += 1
        # What changed: the decision in the context, and the position.
        before: dict[str, Any] = {"context": {"approvals": prior} if prior else {}}
        after: dict[str, Any] = {"context": {"approvals": approvals}}
        if position != workflow.current_step:
            before["current_step"], after["current_step"] = workflow.current_step, position
        store.append_event(
            session,
            f"step.{run.status}",
            self.runner_id,
            workflow_id=workflow.id,
            step_name=step.name,
            before=before,
            after=after,
            data={"reason": f"approval {approval.status}", "on_reject": action},
        )
        if action == "fail":
            workflow.error = f"Step {step.name!r}: approval {approval.status}."
            store.transition_workflow(session, workflow, "failed", self.runner_id, reason=workflow.error)
            return False
        workflow.current_step_run_id = None
        workflow.current_step = position
        return True

    def _approval_summary(self, session: Session, run: StepRun) -> dict[str, Any] | None:
        if run.approval_id is None:
            return None
        approval = session.get(ApprovalRequest, run.approval_id)
        assert approval is not None
        return {
            **_decision_of(session, approval),
            "origin": approval.proposed_action.get("origin", "step"),
            "comment": _last_comment(session, approval.id),
        }

    def _park(self, workflow_id: str, step: Step, run_id: int, ask: AwaitApproval) -> bool:
        """A task asked a person mid-step: open the request and stop here."""
        with self.db.session() as session:
            workflow = self._locked(session, workflow_id)
            run = session.get(StepRun, run_id)
            assert run is not None
            if run.status != "running" or workflow.current_step_run_id != run_id:
                return False
            self._wait_for_person(
                session,
                workflow,
                step,
                run,
                ask.config,
                title=ask.title,
                proposed_action={**ask.proposed_action, "origin": "task"},
                call=ask.call,
            )
            return _released_at_once(workflow, run)

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
        ready: _Ready | None = None,
    ) -> tuple[bool, _Ready | None]:
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
    ) -> tuple[bool, _Ready | None]:
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
        before, after = _moved_past(workflow.current_step, step.name, run_id)
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
            return True, _Ready(
                next_step,
                next_run.id,
                next_run.idempotency_key,
                self._scope(workflow),
                index=workflow.current_step,
            )
        return self._start_next(session, workflow)

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
    ) -> tuple[bool, _Ready | None]:
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
        return True, _Ready(next_step, next_id, next_key, self._scope(workflow), index=index)

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

    def _start_next(self, session: Session, workflow: Workflow) -> tuple[bool, _Ready | None]:
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
            if _released_at_once(workflow, run):
                store.schedule(session, workflow)  # a standing rule released it: runnable now
                return False, None
            workflow.lease_owner = workflow.lease_expires_at = None
            return False, None
        return True, _Ready(
            step, run.id, run.idempotency_key, self._scope(workflow), index=workflow.current_step
        )

    # -- the hot path (core.engine.step_path) -----------------------------------------

    def _hot_path(self, workflow_id: str, ready: _Ready, output: dict[str, Any]) -> _Ready | None:
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
        before, after = _moved_past(ready.index, step.name, ready.run_id)
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
        return _Ready(
            next_step, started.run_id, started.key, scope, index=ready.index + 1, ahead=started.ahead
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

    def _plain(self, workflow_id: str, ready: _Ready) -> WorkflowDefinition | None:
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

    def _finish_path(self, workflow_id: str, ready: _Ready, output: dict[str, Any]) -> bool:
        """A plain last step's outcome and the workflow's completion in one commit
        (core.engine.finish_path); False when the step is not that or the rows changed
        under us (nothing written: the caller takes the general path)."""
        step, definition = ready.step, self._plain(workflow_id, ready)
        if definition is None or ready.index + 1 != len(definition.steps):
            return False
        before, after = _moved_past(ready.index, step.name, ready.run_id)
        done = step_path.Finished(workflow_id, ready.index, step.name, ready.run_id, ready.attempt, output)
        with self.db.runner_engine.connect() as conn, conn.begin() as transaction:
            queued = finish_path.complete_and_finish(
                conn, self.db.is_postgres, self.runner_id, done, utcnow(), before, after
            )
            if queued is None:
                transaction.rollback()
                return False
        finish_path.after_commit(queued)
        self._completed(workflow_id, step, ready.run_id, ready.attempt, output)
        log.info("workflow completed")
        return True

    # -- the hot path ends ------------------------------------------------------

    def _record_failure(self, workflow_id: str, step: Step, run_id: int, exc: BaseException) -> None:
        """The attempt failed: schedule the next one (transient, attempts left) or fail.

        Either way the step run is ``failed`` with its error. A retry stays
        the workflow's current run until it comes due (``runnable_at``), when
        ``_start_retry`` records the next attempt, so a restart in between
        counts on from the attempts already in ``step_runs``.
        """
        error = f"{type(exc).__name__}: {exc}"
        transient = is_transient(exc)
        with self.db.session() as session:
            workflow = self._locked(session, workflow_id)
            run = session.get(StepRun, run_id)
            assert run is not None
            if run.status != "running":
                return
            run.status = "failed"
            run.error = error
            run.finished_at = utcnow()
            policy = step.retry
            if isinstance(exc, CallNotReleased):
                store.append_event(
                    session,
                    "call.refused",
                    self.runner_id,
                    workflow_id=workflow_id,
                    step_name=step.name,
                    approval_id=run.approval_id,
                    data={"step_run_id": run_id, "reason": str(exc)},
                )
            elif policy.retries(exc, run.attempt):
                delay = policy.delay(run.attempt)
                store.append_event(
                    session,
                    "step.retry_scheduled",
                    self.runner_id,
                    workflow_id=workflow_id,
                    step_name=step.name,
                    data={
                        "step_run_id": run_id,
                        "attempt": run.attempt,
                        "next_attempt": run.attempt + 1,
                        "max_attempts": policy.max_attempts,
                        "delay": delay,
                        "reason": error,
                        "transient": transient,
                    },
                )
                runner_metrics.step(step.type, "retrying")
                log.warning(
                    "step failed; retry scheduled",
                    step=step.name,
                    error=error,
                    attempt=run.attempt,
                    delay=delay,
                    transient=transient,
                )
                if workflow.status == "running":
                    store.schedule(session, workflow, delay=delay)
                return
            workflow.error = f"Step {step.name!r} failed: {error}"
            runner_metrics.step(step.type, "failed")
            log.error("step failed", step=step.name, error=error, attempt=run.attempt, transient=transient)
            store.append_event(
                session,
                "step.failed",
                self.runner_id,
                workflow_id=workflow_id,
                step_name=step.name,
                data={"error": error, "attempt": run.attempt, "transient": transient},
            )
            if workflow.status == "running":
                store.transition_workflow(session, workflow, "failed", self.runner_id, reason=workflow.error)


def steps_per_claim() -> int:
    """``COUNTERSIGN_STEPS_PER_CLAIM`` (default ``MAX_STEPS_PER_CLAIM``), at least 1."""
    raw = os.environ.get(STEPS_PER_CLAIM_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else MAX_STEPS_PER_CLAIM
    except ValueError:
        return MAX_STEPS_PER_CLAIM


def _until_database_answers(write: Callable[[], _T]) -> _T:
    """Commit a step's outcome, waiting out a database outage of up to ``OUTCOME_RETRY_SECONDS``.

    The action already ran; recording its outcome later beats running it
    again. Safe to repeat: each try re-reads the rows under the workflow's
    lock and checks the lease and the step run, so an outcome that did
    commit before the connection dropped is not applied twice.
    """
    # The usual case costs one call; the retry policy is built on a failure,
    # which it is handed as its first attempt (same waits and logs as before).
    try:
        return write()
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        failed: list[Exception] = [exc]

    def attempt() -> _T:
        if failed:
            raise failed.pop()
        return write()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_database_unavailable),
        wait=tenacity.wait_exponential(multiplier=OUTCOME_RETRY_INITIAL, max=OUTCOME_RETRY_MAX),
        stop=tenacity.stop_after_delay(OUTCOME_RETRY_SECONDS),
        before_sleep=lambda state: log.warning(
            "database unavailable; will record the step outcome when it answers",
            error=str(state.outcome.exception() if state.outcome else "").splitlines()[0],
            tries=state.attempt_number,
        ),
        reraise=True,
    )
    return retrying(attempt)


def _last_comment(session: Session, approval_id: str) -> str:
    comment = session.scalar(
        select(ApprovalResponse.comment)
        .where(ApprovalResponse.approval_id == approval_id)
        .order_by(ApprovalResponse.id.desc())
        .limit(1)
    )
    return comment or ""


def _decision_of(session: Session, approval: ApprovalRequest) -> dict[str, Any]:
    """What a step (and its agent) is told of a decision: outcome, data, every vote,
    and the released call, checked against the audit trail.

    ``call`` is present when the request guarded a call: the call the decision
    released, or None when it released none (a refusal). ``call_refused``
    says why a released call may not run: its row no longer matches the
    digest recorded, append-only, when the decision was made.
    """
    votes = session.scalars(
        select(ApprovalResponse)
        .where(ApprovalResponse.approval_id == approval.id)
        .order_by(ApprovalResponse.id)
    ).all()
    decision: dict[str, Any] = {
        "status": approval.status,
        "decided_by": approval.decided_by,
        "data": approval.decision_data or {},
        "approval_id": approval.id,
        "votes": [
            {
                "approver": v.approver,
                "decision": v.decision,
                "data": v.data,
                "comment": v.comment,
                "channel": v.channel,
                "level": v.level,
                "at": v.created_at.isoformat(),
            }
            for v in votes
        ],
    }
    if approval.proposed_call is None:
        return decision
    released = approval.released_call if is_approving(approval.status) else None
    decision["call"] = (
        None if released is None else {k: released.get(k) for k in ("tool", "arguments", "digest")}
    )
    if released is not None:
        recorded = (
            session.scalars(
                select(WorkflowEvent.data)
                .where(
                    WorkflowEvent.approval_id == approval.id,
                    WorkflowEvent.event_type == "approval.decided",
                )
                .order_by(WorkflowEvent.id.desc())
                .limit(1)
            ).first()
            or {}
        )
        digest = (recorded.get("released_call") or {}).get("digest")
        try:
            verify_call(released)
            if digest != released.get("digest"):
                raise CallNotReleased(
                    f"The stored call to {released.get('tool')!r} is not the call the decision "
                    "released (its digest differs from the audit trail's); it does not run."
                )
        except CallNotReleased as exc:
            decision["call_refused"] = str(exc)
    return decision


def _moved_past(index: int, step_name: str, run_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's ``step.completed`` before and after: the position, and its output as a
    reference to the run holding it (core.records.history folds events back into
    whole states)."""
    return (
        {"current_step": index, "step_outputs": {}},
        {"current_step": index + 1, "step_outputs": {step_name: history.output_ref(run_id)}},
    )


def _acts_at_once(step: Step) -> bool:
    """A step that asks nobody and acts outside the transaction: its start may take
    the start path (core.engine.start_path)."""
    return step.approval_gate is None and not step.needs_approval and step.type not in PURE_STEP_TYPES


def _released_at_once(workflow: Workflow, run: StepRun) -> bool:
    """Whether the request just opened for ``run`` was decided at once (a standing rule),
    so the workflow goes on instead of waiting."""
    return workflow.status == "running" and run.status == "waiting_approval"


def _asked_by_task(session: Session, run: StepRun) -> bool:
    """True when the run's open approval was asked by its task, not its gate."""
    approval = session.get(ApprovalRequest, run.approval_id) if run.approval_id else None
    return approval is not None and approval.proposed_action.get("origin") == "task"


def _proposed_action(step: Step, scope: dict[str, Any], show: list[str] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"step": step.name, "type": step.type}
    if step.task:
        action["task"] = step.task
    if step.tool:
        action["tool"] = step.tool
        try:
            action["args"] = render_args(step.args, scope)
        except KeyError:
            action["args"] = step.args
    if step.context:
        # Filled in (``${steps.x.result}``) so an approver sees what is passed on.
        try:
            action["context"] = render_args(step.context, scope)
        except KeyError:
            action["context"] = step.context
    if show:
        # What the definition asks approvers to see, rendered now (approval_config.show).
        action["show"] = [{"path": path, "value": _value_at(scope, path)} for path in show]
    return action


def _value_at(scope: dict[str, Any], path: str) -> Any:
    try:
        return render_args("${" + path + "}", scope)
    except KeyError:
        return None
