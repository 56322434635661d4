"""The declared state machines of workflows and approval requests."""

from __future__ import annotations

from core.errors import InvalidTransition

WORKFLOW_STATUSES = (
    "pending", "running", "waiting_approval", "paused", "completed", "failed", "cancelled",
)
FINISHED_WORKFLOW = frozenset({"completed", "cancelled"})

WORKFLOW_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "paused", "cancelled"}),
    "running": frozenset({"waiting_approval", "paused", "completed", "failed", "cancelled"}),
    "waiting_approval": frozenset({"running", "paused", "failed", "cancelled"}),
    # paused -> waiting_approval: resumed while its approval is still open.
    "paused": frozenset({"running", "waiting_approval", "cancelled"}),
    # A failed workflow may be retried from its failed step or rolled back.
    "failed": frozenset({"running", "paused", "cancelled"}),
    # Rollback of a completed workflow leaves it paused at the checkpoint.
    "completed": frozenset({"paused"}),
    "cancelled": frozenset(),
}

APPROVAL_STATUSES = ("pending", "approved", "rejected", "modified", "expired", "cancelled")
APPROVAL_OPEN = "pending"
APPROVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"approved", "rejected", "modified", "expired", "cancelled"}),
    "approved": frozenset(),
    "rejected": frozenset(),
    "modified": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}
# Outcomes that let the workflow go on with the guarded action.
APPROVING_OUTCOMES = frozenset({"approved", "modified"})


def check_workflow_transition(current: str, new: str) -> None:
    if new not in WORKFLOW_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"A workflow cannot go from {current} to {new}.")


def check_approval_transition(current: str, new: str) -> None:
    if new not in APPROVAL_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"An approval request cannot go from {current} to {new}.")
