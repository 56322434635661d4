"""The seed's ``WorkflowRecoveryService``: failed workflows tried again, by failure
type and retry policy.

A step's retry policy (``retry: {max_attempts, backoff, on}``, core.definitions.workflow)
already retries its failures inside the runner. A workflow fails when those
attempts ran out; recovery is the next round, later: an outage that outlasted
the step's backoff, say. For each failed workflow it reads the failure the
runner recorded (the last ``step.failed`` event) and the failed step's policy:

- a failure the policy retries (``transient`` ones, or ``any``) is retried
  with ``workflows.retry_workflow`` (the failed step starts afresh; the steps
  before it keep their outputs), once the policy's next backoff has passed
  since the failure, and at most ``max_recoveries`` times per workflow;
- a failure it does not retry (a bug, bad input) is left failed: running it
  again would fail the same way;
- a workflow failed by a person's decision (a rejected approval) is left as
  they decided.

``recover_failed_workflows`` does one pass and says what it did with each
workflow; runners then run the retried ones. ``WorkflowRecoveryService`` is
the seed's awaitable class around it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from core.base.errors import InvalidTransition
from core.definitions.workflow import RetryPolicy
from core.engine import workflows as ops
from core.store.tables import Workflow, WorkflowEvent, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

RECOVERY_ACTOR = "system:recovery"
DEFAULT_MAX_RECOVERIES = 3

Action = Literal["retried", "skipped", "not_yet"]


@dataclass(frozen=True)
class RecoveryOutcome:
    """What one pass did with one failed workflow, and why."""

    workflow_id: str
    step: str | None
    action: Action
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _policy_of(workflow: Workflow) -> RetryPolicy:
    steps = workflow.definition.get("steps", [])
    raw = steps[workflow.current_step].get("retry") if 0 <= workflow.current_step < len(steps) else None
    return RetryPolicy.model_validate(raw or {})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


def consider(
    db: Database,
    workflow: Workflow,
    *,
    actor: str = RECOVERY_ACTOR,
    max_recoveries: int = DEFAULT_MAX_RECOVERIES,
    now: datetime | None = None,
) -> RecoveryOutcome:
    """Recover one failed workflow if its failure and policy say so."""
    step = ops.failed_step_name(workflow)
    events = ops.events_of(db, workflow.id)
    failures = [e for e in events if e.event_type == "step.failed"]
    last: WorkflowEvent | None = failures[-1] if failures else None

    def outcome(action: Action, reason: str) -> RecoveryOutcome:
        return RecoveryOutcome(workflow.id, step, action, reason)

    if last is None:
        return outcome("skipped", "no step failure is recorded; nothing to retry")
    data = dict(last.data or {})
    if str(data.get("reason", "")).startswith("approval "):
        return outcome(
            "skipped", f"a person's decision failed it ({data['reason']}); retrying would overrule it"
        )
    before = events[events.index(last) - 1] if events.index(last) > 0 else None
    if before is not None and before.event_type == "call.refused":
        return outcome(
            "skipped",
            "the approved call was refused (its digest did not match); retrying would run an unapproved call",
        )
    policy = _policy_of(workflow)
    transient = bool(data.get("transient"))
    if "any" not in policy.on and not transient:
        return outcome(
            "skipped",
            f"failed by an error that is not transient ({data.get('error')}); "
            "its retry policy retries transient failures only",
        )
    recovered = sum(1 for e in events if e.event_type == "workflow.retried" and e.actor == actor)
    if recovered >= max_recoveries:
        return outcome("skipped", f"recovered {recovered} times already (max_recoveries)")
    wait = policy.delay(policy.max_attempts + recovered)
    since = ((now or utcnow()) - _aware(last.created_at)).total_seconds()
    if since < wait:
        return outcome(
            "not_yet", f"its backoff asks for {wait:g} s after the failure; {since:.1f} s have passed"
        )
    try:
        ops.retry_workflow(db, workflow.id, actor)
    except InvalidTransition as exc:  # someone else moved it meanwhile
        return outcome("skipped", str(exc))
    kind = "transient" if transient else "any"
    return outcome(
        "retried", f"{kind} failure, retry {recovered + 1} of {max_recoveries}: {data.get('error')}"
    )


def recover_failed_workflows(
    db: Database,
    *,
    actor: str = RECOVERY_ACTOR,
    max_recoveries: int = DEFAULT_MAX_RECOVERIES,
    limit: int = 100,
    now: datetime | None = None,
) -> list[RecoveryOutcome]:
    """One pass over (up to ``limit``) failed workflows, newest first."""
    page = ops.list_workflows(db, status="failed", limit=limit)
    return [consider(db, w, actor=actor, max_recoveries=max_recoveries, now=now) for w in page.rows]


class WorkflowRecoveryService:
    """The seed's recovery service: ``await recover_failed_workflows()``.

    ``db_session`` is what ``SmolAgentOrchestrator`` takes (an ``AsyncSession``,
    an async URL, or a ``core.store.db.Database``); default: the configured database.
    """

    def __init__(
        self,
        db_session: Any = None,
        *,
        actor: str = RECOVERY_ACTOR,
        max_recoveries: int = DEFAULT_MAX_RECOVERIES,
        limit: int = 100,
    ) -> None:
        from core.store.async_db import database_for

        self.db = database_for(db_session, migrate=False)
        self.actor = actor
        self.max_recoveries = max_recoveries
        self.limit = limit

    def recover_now(self) -> list[RecoveryOutcome]:
        """The same pass, synchronously."""
        from core.store.async_db import ensure_schema

        ensure_schema(self.db)
        return recover_failed_workflows(
            self.db, actor=self.actor, max_recoveries=self.max_recoveries, limit=self.limit
        )

    async def recover_failed_workflows(self) -> list[RecoveryOutcome]:
        """Automatically attempts to recover failed workflows based on failure type
        and retry policies (seed 002); what it did with each."""
        return await asyncio.to_thread(self.recover_now)


__all__ = ["RecoveryOutcome", "WorkflowRecoveryService", "consider", "recover_failed_workflows"]
