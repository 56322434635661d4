"""The declared state machines of workflows and approval requests.

Statuses are ``StrEnum``s: each member is the very string stored in the
database and sent in JSON, so ``WorkflowStatus.RUNNING == "running"``. Every
set of statuses an interface needs (what may be paused, cancelled, resumed)
is derived here from the transition tables, never restated.
"""

from __future__ import annotations

from enum import StrEnum

from core.base.errors import InvalidTransition


class WorkflowStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    MODIFIED = "modified"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


W, A = WorkflowStatus, ApprovalStatus

WORKFLOW_STATUSES: tuple[str, ...] = tuple(W)
FINISHED_WORKFLOW = frozenset({W.COMPLETED, W.CANCELLED})

WORKFLOW_TRANSITIONS: dict[str, frozenset[str]] = {
    W.PENDING: frozenset({W.RUNNING, W.PAUSED, W.CANCELLED}),
    W.RUNNING: frozenset({W.WAITING_APPROVAL, W.PAUSED, W.COMPLETED, W.FAILED, W.CANCELLED}),
    W.WAITING_APPROVAL: frozenset({W.RUNNING, W.PAUSED, W.FAILED, W.CANCELLED}),
    # paused -> waiting_approval: resumed while its approval is still open.
    W.PAUSED: frozenset({W.RUNNING, W.WAITING_APPROVAL, W.CANCELLED}),
    # A failed workflow may be retried from its failed step or rolled back
    # (a rollback leaves it paused at the checkpoint).
    W.FAILED: frozenset({W.RUNNING, W.PAUSED, W.CANCELLED}),
    # Rollback of a completed workflow leaves it paused at the checkpoint.
    W.COMPLETED: frozenset({W.PAUSED}),
    W.CANCELLED: frozenset(),
}

APPROVAL_STATUSES: tuple[str, ...] = tuple(A)
APPROVAL_OPEN = A.PENDING
APPROVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    A.PENDING: frozenset({A.APPROVED, A.REJECTED, A.MODIFIED, A.EXPIRED, A.CANCELLED}),
    A.APPROVED: frozenset(),
    A.REJECTED: frozenset(),
    A.MODIFIED: frozenset(),
    A.EXPIRED: frozenset(),
    A.CANCELLED: frozenset(),
}
# Outcomes that let the workflow go on with the guarded action.
APPROVING_OUTCOMES = frozenset({A.APPROVED, A.MODIFIED})


def workflows_that_may_become(status: str) -> frozenset[str]:
    """Every workflow status from which ``status`` may be reached in one move."""
    return frozenset(s for s, moves in WORKFLOW_TRANSITIONS.items() if status in moves)


# What a person may ask of a workflow in each status (the dashboard's buttons,
# the CLI and REST all refuse through check_workflow_transition anyway).
CANCELLABLE = workflows_that_may_become(W.CANCELLED)
# A person pauses a workflow that is under way; a failed or completed one is
# paused only by a rollback, which has its own control.
PAUSABLE = workflows_that_may_become(W.PAUSED) - {W.FAILED, W.COMPLETED}
RESUMABLE = frozenset({W.PAUSED})
RETRYABLE = frozenset({W.FAILED})


def check_workflow_transition(current: str, new: str) -> None:
    if new not in WORKFLOW_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"A workflow cannot go from {current} to {new}.")


def check_approval_transition(current: str, new: str) -> None:
    if new not in APPROVAL_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"An approval request cannot go from {current} to {new}.")


__all__ = [
    "APPROVAL_OPEN",
    "APPROVAL_STATUSES",
    "APPROVAL_TRANSITIONS",
    "APPROVING_OUTCOMES",
    "CANCELLABLE",
    "FINISHED_WORKFLOW",
    "PAUSABLE",
    "RESUMABLE",
    "RETRYABLE",
    "WORKFLOW_STATUSES",
    "WORKFLOW_TRANSITIONS",
    "ApprovalStatus",
    "WorkflowStatus",
    "check_approval_transition",
    "check_workflow_transition",
    "workflows_that_may_become",
]
