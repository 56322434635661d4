"""What every channel shares: the delivery it is handed and how it fails.

A channel turns one outbox row into one message (or one update of a message
it sent earlier) and either returns where it put it (``external_ref``) or
raises one of the failures below. It never touches the database: the
dispatcher records the outcome, only after the channel accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.approvals.presentation import RequestView

# Approval types whose answer needs more than a button: they link to the dashboard
# when a message has no view; with one only forms do (a budget's amount is asked in
# Slack's edit modal and on the email confirmation page).
FORM_TYPES = ("form", "budget")
MAX_FACTS = 10
MAX_FACT_CHARS = 200


class DeliveryFailure(Exception):
    """A delivery did not happen; the dispatcher decides what next."""


class TemporaryFailure(DeliveryFailure):
    """The channel is down or refused for now: retry later; counts towards its breaker."""


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help (unknown recipient, no configuration): the row goes dead."""


class Deferred(DeliveryFailure):
    """Not yet: try again shortly without counting an attempt (e.g. waiting for a message to update)."""


@dataclass(frozen=True)
class ApprovalFacts:
    """The approval as a message shows it (read once, outside any transaction)."""

    id: str
    title: str
    description: str
    approval_type: str
    status: str
    approvers: list[str]
    requested_by: str
    workflow_id: str | None
    workflow_name: str | None
    step_name: str | None
    level: int
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    proposed_action: dict[str, Any] = field(default_factory=dict)
    context_data: dict[str, Any] = field(default_factory=dict)
    # What the request shows (core.approvals.presentation): the guarded call, the amount in
    # words, the changes, the chain of levels, votes and time left.
    view: RequestView | None = None
    # core.approvals.presentation.needs_fields of the request: a button cannot answer it.
    needs_fields: bool = False

    @property
    def needs_form(self) -> bool:
        return self.approval_type in FORM_TYPES

    @property
    def needs_dashboard(self) -> bool:
        """A message links to the dashboard instead of offering buttons: with a view, when
        the answer needs fields; without one (an old row), for forms and budgets."""
        return self.needs_fields if self.view is not None else self.needs_form

    @property
    def is_open(self) -> bool:
        return self.status == "pending"

    def key_facts(self) -> list[tuple[str, str]]:
        """Label/value pairs shown as the request's key facts (at most ``MAX_FACTS``)."""
        facts: list[tuple[str, str]] = []
        if self.workflow_name:
            facts.append(("Workflow", self.workflow_name))
        if self.step_name:
            facts.append(("Step", self.step_name))
        facts.append(("Type", self.approval_type))
        facts.append(("Requested by", self.requested_by))
        if self.expires_at is not None:
            facts.append(("Answer by", self.expires_at.strftime("%Y-%m-%d %H:%M UTC")))
        for key, value in self.context_data.items():
            if len(facts) >= MAX_FACTS:
                break
            if isinstance(value, dict | list):
                continue
            facts.append((str(key).replace("_", " ").capitalize(), str(value)))
        return [(label[:MAX_FACT_CHARS], value[:MAX_FACT_CHARS]) for label, value in facts]

    def action_summary(self) -> str:
        """The agent's proposed action as one readable line (or empty)."""
        action = self.proposed_action or {}
        if not action:
            return ""
        tool = action.get("tool") or action.get("name") or action.get("action")
        args = action.get("arguments") or action.get("args") or action.get("input")
        summary = action.get("summary") or action.get("description")
        parts = []
        if summary:
            parts.append(str(summary))
        if tool:
            parts.append(f"{tool}({_short(args)})" if args is not None else str(tool))
        if not parts:
            parts.append(_short(action))
        return " — ".join(parts)[:1500]


def _short(value: Any) -> str:
    import json

    if isinstance(value, dict):
        return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in value.items())
    return json.dumps(value, default=str)


@dataclass(frozen=True)
class Delivery:
    """One outbox row to deliver, with what a message needs."""

    notification_id: str
    kind: str
    channel: str
    recipient: str
    attempt: int
    payload: dict[str, Any]
    approval: ApprovalFacts | None = None
    # For updates: where earlier messages of this approval went (Slack channel + ts).
    prior_refs: list[dict[str, Any]] = field(default_factory=list)
    # Email addresses behind a group recipient (or the recipient itself).
    addresses: list[str] = field(default_factory=list)


class Channel(Protocol):
    """A notification channel (Slack, email, webhook)."""

    name: str

    def configured(self) -> bool:
        """Whether the secrets and settings it needs are present."""
        ...

    def status(self) -> dict[str, Any]:
        """What is configured, secrets masked (for the Settings page)."""
        ...

    def send(self, delivery: Delivery) -> dict[str, Any]:
        """Deliver; return the external reference. Raise a ``DeliveryFailure``."""
        ...

    def test(self, recipient: str) -> dict[str, Any]:
        """Send a harmless test message (Settings page 'test' button)."""
        ...
