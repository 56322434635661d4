"""Bulk decisions: approve or reject several binary requests with one comment.

Each request is decided through ``ApprovalEngine.respond_to_approval``, the
one function every channel uses, so each vote is checked, recorded and
audited on its own and a guarded call is released exactly as for one
decision. The whole selection is checked first (known ids, each a binary
request the actor sees and may answer): a bad selection writes nothing, and
the refusal names each request it is about. A request that moved on since
the inbox was drawn (decided, expired, or already answered by the actor at
its level, perhaps from another channel) is reported on its own, not fatal to
the others; only when no request of the selection can be decided is nothing
decided and the whole selection refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.approvals.engine import ApprovalEngine, check_vote
from core.base.errors import AlreadyVoted, ApprovalClosed, CountersignError, Invalid
from core.identity.permissions import Action, check
from core.records import rows as store
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database

BULK_DECISIONS = ("approve", "reject")
MAX_BULK = 100


class InvalidBulkDecision(Invalid):
    """The bulk decision is invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Nothing was decided: " + "; ".join(self.problems))


@dataclass(frozen=True)
class BulkOutcome:
    approval_id: str
    title: str
    status: str  # the request's status afterwards, or "refused"
    message: str  # "" when the vote was recorded


def decide_many(
    db: Database,
    approval_ids: list[str],
    actor: str,
    decision: str,
    *,
    comment: str = "",
    channel: str = "dashboard",
) -> list[BulkOutcome]:
    """One vote of ``decision`` by ``actor`` on each request, in the order given."""
    ids = list(dict.fromkeys(approval_ids))
    problems: list[str] = []
    if decision not in BULK_DECISIONS:
        problems.append(f"decision: must be approve or reject, not {decision!r}")
    if not ids:
        problems.append("select at least one request")
    if len(ids) > MAX_BULK:
        problems.append(f"at most {MAX_BULK} requests at once")
    titles: dict[str, str] = {}
    moved_on: dict[str, BulkOutcome] = {}  # by id: refused before any vote, the others go on
    if not problems:
        with db.read() as session:
            check(session, actor, Action.APPROVALS_ANSWER)
            tenant = tenant_of(session, actor)
            for approval_id in ids:
                try:
                    approval = store.get_approval(session, approval_id, tenant=tenant)
                except CountersignError as exc:
                    problems.append(str(exc))
                    continue
                titles[approval_id] = approval.title
                if approval.approval_type != "binary":
                    problems.append(
                        f"{approval.title!r} is a {approval.approval_type} "
                        "request: open it to answer its form"
                    )
                    continue
                try:
                    check_vote(
                        session, approval, approver=actor, decision=decision, data=None, comment=comment
                    )
                except (ApprovalClosed, AlreadyVoted) as exc:
                    moved_on[approval_id] = BulkOutcome(approval_id, approval.title, "refused", str(exc))
                except CountersignError as exc:
                    problems.append(f"{approval.title!r}: {exc}")
        if not problems and len(moved_on) == len(ids):
            problems = [f"{o.title!r}: {o.message}" for o in moved_on.values()]
    if problems:
        raise InvalidBulkDecision(problems)
    engine = ApprovalEngine(db)
    outcomes = []
    for approval_id in ids:
        if approval_id in moved_on:
            outcomes.append(moved_on[approval_id])
            continue
        try:
            answered = engine.respond_to_approval(
                approval_id, actor, decision, data=None, comment=comment, channel=channel
            )
            outcomes.append(BulkOutcome(approval_id, titles[approval_id], answered.status, ""))
        except CountersignError as exc:  # decided elsewhere meanwhile: this one only
            outcomes.append(BulkOutcome(approval_id, titles[approval_id], "refused", str(exc)))
    return outcomes
