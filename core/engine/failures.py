"""When a step does not succeed: a failed attempt retried by its policy or
failing the workflow, an error of the engine's own code retried a few times
with a backoff, and an outcome whose commit waits out a database outage
(``until_database_answers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
import tenacity

from core.base.errors import CallNotReleased
from core.base.retry import first_line, is_database_unavailable, is_transient
from core.definitions.workflow import Step
from core.engine.executor_base import ExecutorBase
from core.records import rows as store
from core.store.tables import StepRun, Workflow, utcnow
from core.telemetry.metrics import runner_metrics

log = structlog.get_logger(__name__)

__all__ = [
    "ENGINE_ERROR_ATTEMPTS",
    "ENGINE_ERROR_BACKOFF",
    "OUTCOME_RETRY_SECONDS",
    "Failures",
    "until_database_answers",
]

# An error Countersign's own code raises while advancing a step (not the
# tool's failure) is tried this many times in all, ENGINE_ERROR_BACKOFF
# seconds apart (doubling); then the step and the workflow fail with it.
ENGINE_ERROR_ATTEMPTS = 3
ENGINE_ERROR_BACKOFF = 1.0
# A step's outcome is committed after its action ran; while the database is
# unreachable the commit is tried again (0.5 s doubling to 5 s) for up to a
# minute, then the workflow is left to lease recovery (the step runs again
# with the same idempotency key).
OUTCOME_RETRY_INITIAL = 0.5
OUTCOME_RETRY_MAX = 5.0
OUTCOME_RETRY_SECONDS = 60.0

_T = TypeVar("_T")


def until_database_answers(write: Callable[[], _T]) -> _T:
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


class Failures(ExecutorBase):
    """The executor's part that records what did not succeed."""

    def _current_step_name(self, workflow: Workflow) -> str | None:
        """The current step's name, read from the stored definition as it is: the error
        being handled may be that the definition no longer loads (one stored before a
        check it fails was added), and parsing it here would raise again, so the
        workflow would never reach its bounded failure."""
        try:
            steps = self._definition(workflow).steps
        except ValueError:  # pydantic's ValidationError: the stored definition does not load
            raw = workflow.definition.get("steps") if isinstance(workflow.definition, dict) else None
            if isinstance(raw, list) and 0 <= workflow.current_step < len(raw):
                name = (
                    raw[workflow.current_step].get("name")
                    if isinstance(raw[workflow.current_step], dict)
                    else None
                )
                return str(name) if name is not None else None
            return None
        return steps[workflow.current_step].name if workflow.current_step < len(steps) else None

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
            step_name = self._current_step_name(workflow)
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
