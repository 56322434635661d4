"""``python -m core audit verify``: recompute the trail's hash chains (core.records.trail)
and name the first broken link.

A chain is intact when its entries (events and votes together) hold the
positions 1..n without gap or repeat, each links to the hash of the one
before, each hash is the recomputed hash of its row, and each row's content
places it in that chain. An entry without a seal is broken too.

The rows beside the trail that are not sealed themselves (``approval_requests``,
``step_runs``) are then checked against the sealed events that recorded them
(``cross_check``): who asked and what (``approval.requested``), the outcome, who
decided it, when, and the call it released (``approval.decided``,
``approval.cancelled``, ``approval.level_passed``), and each step run's outcome
(``step.completed``, ``call.refused``, ``step.failed``, ...). A row that says
otherwise is a ``Mismatch``, named by table, row and field; the chain does not
hold then either. ``sealed_request`` and ``sealed_run`` give the sealed facts, which
the auditor's export (core.ops.audit_export) prints instead of the rows'.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select, union
from sqlalchemy.orm import Session

from core.base.errors import TrailBroken
from core.identity.permissions import Action, check
from core.records import rows as store
from core.records.trail import EVENT_FIELDS, GENESIS, VOTE_FIELDS, entry_hash, event_chain
from core.store.tables import ApprovalRequest, ApprovalResponse, StepRun, Workflow, WorkflowEvent
from core.store.tenancy import tenant_of

if TYPE_CHECKING:
    from core.store.db import Database


@dataclass(frozen=True)
class BrokenLink:
    """The first entry of a chain that does not hold."""

    chain: str
    table: str
    row_id: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"position {self.seq}" if self.seq is not None else "no position"
        return f"{self.table} row {self.row_id} (chain {self.chain}, {where}): {self.reason}"


@dataclass(frozen=True)
class Mismatch:
    """A field of a row beside the trail that differs from what the sealed trail recorded."""

    table: str
    row_id: str | int
    field: str
    stored: Any
    sealed: Any
    source: str  # the sealed entry that says otherwise, or why none does

    def __str__(self) -> str:
        said = f"there is {self.source}" if self.source.startswith("no ") else f"{self.source} says"
        return f"{self.table} row {self.row_id} field {self.field} is {_shown(self.stored)}, but {said}" + (
            "" if self.source.startswith("no ") else f" {_shown(self.sealed)}"
        )


def _shown(value: Any) -> str:
    return "nothing" if value is None else repr(value)


@dataclass(frozen=True)
class ChainReport:
    chain: str
    entries: int
    head: str  # the last entry's hash: keep it to detect a later rewrite of the whole chain
    broken: BrokenLink | None
    mismatches: tuple[Mismatch, ...] = ()  # rows beside the chain that contradict it

    @property
    def intact(self) -> bool:
        return self.broken is None and not self.mismatches

    @property
    def fault(self) -> str | None:
        """The first thing that does not hold, as one phrase (None when intact)."""
        if self.broken is not None:
            return f"broken at {self.broken}"
        if self.mismatches:
            more = len(self.mismatches) - 1
            return f"contradicted: {self.mismatches[0]}" + (f" (and {more} more)" if more else "")
        return None


@dataclass(frozen=True)
class _Entry:
    table: str
    kind: str
    row_id: int
    seq: int | None
    prev: str | None
    digest: str | None
    home: str  # the chain the row's content places it in
    content: dict[str, Any]


def _event_entries(session: Session, condition: Any) -> Iterator[_Entry]:
    t: Table = WorkflowEvent.__table__  # type: ignore[assignment]
    for row in session.execute(select(t).where(condition)).mappings():
        yield _Entry(
            "workflow_events",
            "event",
            row["id"],
            row["trail_seq"],
            row["trail_prev"],
            row["trail_hash"],
            event_chain(row["workflow_id"], row["session_id"], row["approval_id"]),
            {f: row[f] for f in EVENT_FIELDS},
        )


def _vote_entries(session: Session, condition: Any) -> Iterator[_Entry]:
    t: Table = ApprovalResponse.__table__  # type: ignore[assignment]
    requests: Table = ApprovalRequest.__table__  # type: ignore[assignment]
    query = (
        select(t, requests.c.workflow_id.label("request_workflow"))
        .outerjoin(requests, requests.c.id == t.c.approval_id)
        .where(condition)
    )
    for row in session.execute(query).mappings():
        yield _Entry(
            "approval_responses",
            "vote",
            row["id"],
            row["trail_seq"],
            row["trail_prev"],
            row["trail_hash"],
            row["request_workflow"] or f"approval:{row['approval_id']}",
            {f: row[f] for f in VOTE_FIELDS},
        )


def _entries_of(session: Session, chain: str) -> list[_Entry]:
    """The chain's sealed entries and any unsealed row whose content belongs in it."""
    events = WorkflowEvent.__table__.c
    votes = ApprovalResponse.__table__.c
    found = [
        *_event_entries(session, (events.trail_chain == chain)),
        *_vote_entries(session, (votes.trail_chain == chain)),
    ]
    unsealed = [
        e
        for e in [
            *_event_entries(session, events.trail_chain.is_(None)),
            *_vote_entries(session, votes.trail_chain.is_(None)),
        ]
        if e.home == chain
    ]
    return found + unsealed


def check_chain(chain: str, entries: list[_Entry]) -> ChainReport:
    """Walk ``entries`` in chain order; the report names the first broken link."""
    ordered = sorted(entries, key=lambda e: (e.seq is None, e.seq or 0, e.table, e.row_id))
    prev = GENESIS
    for position, entry in enumerate(ordered, 1):
        reason = _fault(chain, position, prev, entry)
        if reason is not None:
            return ChainReport(
                chain, len(ordered), prev, BrokenLink(chain, entry.table, entry.row_id, entry.seq, reason)
            )
        prev = str(entry.digest)
    return ChainReport(chain, len(ordered), prev, None)


def _fault(chain: str, position: int, prev: str, entry: _Entry) -> str | None:
    """Why ``entry``, found at ``position`` after an entry hashed ``prev``, breaks the chain."""
    if entry.digest is None or entry.seq is None:
        return "the entry is not sealed (no hash)"
    if entry.seq != position:
        missing = "missing or deleted" if entry.seq > position else "repeated"
        return f"expected position {position}: an entry is {missing}"
    if entry.prev != prev:
        return "its link to the previous entry does not match that entry's hash"
    if entry.home != chain:
        return f"its content places it in chain {entry.home}, not this one"
    if entry_hash(entry.kind, entry.content, chain=chain, seq=entry.seq, prev=prev) != entry.digest:
        return "its content was changed after it was written (hash mismatch)"
    return None


def verify_chain(session: Session, chain: str) -> ChainReport:
    """The chain's hashes and links, and the rows beside it checked against its events."""
    report = check_chain(chain, _entries_of(session, chain))
    mismatches = tuple(cross_check(session, chain))
    if not mismatches:
        return report
    return ChainReport(report.chain, report.entries, report.head, report.broken, mismatches)


# -- the rows beside the chain, checked against its sealed events ---------------------

# The events that close a request, and the outcomes that release its call.
CLOSING_EVENTS = ("approval.decided", "approval.cancelled")
RELEASING = ("approved", "modified")
# How far a row's decided_at may be from the time its closing event was sealed (both
# are taken in the same transaction, a few statements apart).
DECIDED_AT_SLACK_SECONDS = 5.0
# A run's outcome as the trail records it, by the event that names its step_run_id.
RUN_EVENTS = {
    "step.completed": "completed",
    "call.refused": "failed",
    "step.retry_scheduled": "failed",
    "step.compensated": "compensated",
    "step.rolled_back": "rolled_back",
}
# What a run's row may say, given its sealed outcome: a rollback later marks a run it
# undid (or a failed one after its checkpoint) without an event per run.
RUN_MAY_SAY = {
    "completed": ("completed", "compensated", "rolled_back"),
    "failed": ("failed", "rolled_back"),
    "compensated": ("compensated",),
    "rolled_back": ("rolled_back",),
}
# A row may only say these when an event records it.
RUN_NEEDS_EVENT = ("completed", "compensated")


def _entry(event: WorkflowEvent) -> str:
    return f"the sealed {event.event_type} event (workflow_events row {event.id}, position {event.trail_seq})"


def sealed_events(session: Session, chain: str) -> list[WorkflowEvent]:
    """The chain's sealed events, in chain order."""
    return list(
        session.scalars(
            select(WorkflowEvent)
            .where(WorkflowEvent.trail_chain == chain, WorkflowEvent.trail_hash.is_not(None))
            .order_by(WorkflowEvent.trail_seq)
        )
    )


def call_of(call: dict[str, Any] | None) -> dict[str, Any] | None:
    """A call as the trail keeps it and the export shows it: tool, arguments, digest."""
    if not isinstance(call, dict):
        return None
    return {k: call.get(k) for k in ("tool", "arguments", "digest")}


def _plain(value: Any) -> Any:
    """``value`` with a whole float as an integer (a JSON column may give either back)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class SealedRequest:
    """A request as its sealed events record it."""

    approval_id: str
    requested: WorkflowEvent | None  # approval.requested
    closing: WorkflowEvent | None  # approval.decided or approval.cancelled
    level_passed: WorkflowEvent | None  # the last approval.level_passed
    run_id: int | None  # the step run that was running when it was asked (step.started)

    @property
    def outcome(self) -> str | None:
        """The outcome the closing event records ("pending" before one; None when an
        event written before outcomes were recorded with it does not say)."""
        if self.closing is None:
            return "pending"
        if self.closing.event_type == "approval.cancelled":
            return "cancelled"
        status = (self.closing.after or {}).get("status")
        return None if status is None else str(status)

    @property
    def decided_by(self) -> str | None:
        return None if self.closing is None else self.closing.actor

    @property
    def decided_at(self) -> datetime | None:
        return None if self.closing is None else _aware(self.closing.created_at)

    @property
    def released_call(self) -> dict[str, Any] | None:
        """The call the decision released (a refusal: none); while open or once cancelled,
        what the levels passed so far released."""
        if self.closing is not None and self.closing.event_type == "approval.decided":
            if self.outcome not in RELEASING:
                return None
            return call_of((self.closing.data or {}).get("released_call"))
        if self.level_passed is not None:
            return call_of((self.level_passed.data or {}).get("released_call"))
        return None

    def released_source(self) -> str:
        if self.closing is not None and self.closing.event_type == "approval.decided":
            return _entry(self.closing)
        if self.level_passed is not None:
            return _entry(self.level_passed)
        return "no sealed decision or level passed that released a call"


def sealed_request(events: list[WorkflowEvent], approval_id: str) -> SealedRequest:
    """What ``events`` (a chain's sealed events, in order) record of one request."""
    requested = closing = level_passed = None
    open_runs: dict[str | None, int] = {}
    run_id = None
    for event in events:
        data = event.data or {}
        if event.event_type in ("step.started", "step.resumed") and "step_run_id" in data:
            open_runs[event.step_name] = data["step_run_id"]
        if event.approval_id != approval_id:
            continue
        if event.event_type == "approval.requested" and requested is None:
            requested = event
            run_id = open_runs.get(event.step_name) if event.step_name is not None else None
        elif event.event_type in CLOSING_EVENTS and closing is None:
            closing = event
        elif event.event_type == "approval.level_passed" and closing is None:
            level_passed = event
    return SealedRequest(approval_id, requested, closing, level_passed, run_id)


@dataclass(frozen=True)
class SealedRun:
    """A step run's outcome as its sealed events record it."""

    run_id: int
    step: str | None
    status: str | None  # None: no sealed outcome yet (started, waiting, or a rollback's bulk mark)
    event: WorkflowEvent | None  # the event that recorded that outcome


def sealed_run(events: list[WorkflowEvent], run_id: int) -> SealedRun:
    """What ``events`` record of one step run: its last outcome (a step.failed, which
    names no run, is its step's run that was started last)."""
    step: str | None = None
    status: str | None = None
    recorded: WorkflowEvent | None = None
    open_runs: dict[str | None, int] = {}
    for event in events:
        data = event.data or {}
        named = data.get("step_run_id")
        if event.event_type in ("step.started", "step.resumed") and named is not None:
            open_runs[event.step_name] = named
            if named == run_id:
                step = event.step_name
        if event.event_type in RUN_EVENTS and named == run_id:
            status, recorded = RUN_EVENTS[event.event_type], event
        elif event.event_type == "step.failed" and open_runs.get(event.step_name) == run_id:
            status, recorded = "failed", event
    return SealedRun(run_id, step, status, recorded)


def title_agrees(stored: str, sealed: Any) -> bool:
    """Whether a row's title is the sealed one, or that one shortened as a request
    shortens a title given at run time (its head and an ellipsis)."""
    sealed = str(sealed)
    return stored == sealed or (
        stored.endswith("\u2026") and len(stored) < len(sealed) and sealed.startswith(stored[:-1])
    )


def _check_request(approval: ApprovalRequest, sealed: SealedRequest) -> Iterator[Mismatch]:
    def differs(field: str, stored: Any, says: Any, source: str) -> Iterator[Mismatch]:
        if _plain(stored) != _plain(says):
            yield Mismatch("approval_requests", approval.id, field, stored, says, source)

    if sealed.requested is None:
        yield Mismatch(
            "approval_requests",
            approval.id,
            "id",
            approval.id,
            None,
            "no sealed approval.requested event of this chain",
        )
        return
    opened = _entry(sealed.requested)
    asked = sealed.requested.data or {}
    # Sealed as given before the actor was normalised like the row (a mixed-case --as):
    # the same person either way.
    sealed_by = sealed.requested.actor.strip().lower() if sealed.requested.actor else sealed.requested.actor
    yield from differs("requested_by", approval.requested_by, sealed_by, opened)
    if "title" in asked and not title_agrees(approval.title, asked["title"]):
        yield Mismatch("approval_requests", approval.id, "title", approval.title, asked["title"], opened)
    if "type" in asked:
        yield from differs("approval_type", approval.approval_type, asked["type"], opened)
    if "call" in asked:
        proposed, recorded = call_of(approval.proposed_call), call_of(asked["call"])
        for key in ("tool", "arguments", "digest"):
            yield from differs(
                f"proposed_call.{key}",
                None if proposed is None else proposed[key],
                None if recorded is None else recorded[key],
                opened,
            )
    if sealed.run_id is not None:
        yield from differs("step_run_id", approval.step_run_id, sealed.run_id, opened)
    closed = (
        _entry(sealed.closing)
        if sealed.closing is not None
        else "no sealed approval.decided or approval.cancelled event"
    )
    if sealed.outcome is not None:
        yield from differs("status", approval.status, sealed.outcome, closed)
    yield from differs("decided_by", approval.decided_by, sealed.decided_by, closed)
    stored_at, sealed_at = _aware(approval.decided_at), sealed.decided_at
    if (stored_at is None) != (sealed_at is None) or (
        stored_at is not None
        and sealed_at is not None
        and abs((stored_at - sealed_at).total_seconds()) > DECIDED_AT_SLACK_SECONDS
    ):
        yield Mismatch(
            "approval_requests",
            approval.id,
            "decided_at",
            None if stored_at is None else stored_at.isoformat(),
            None if sealed_at is None else sealed_at.isoformat(),
            closed,
        )
    released, recorded = call_of(approval.released_call), sealed.released_call
    for key in ("tool", "arguments", "digest"):
        yield from differs(
            f"released_call.{key}",
            None if released is None else released[key],
            None if recorded is None else recorded[key],
            sealed.released_source(),
        )


def _check_run(run: StepRun, sealed: SealedRun) -> Iterator[Mismatch]:
    if sealed.status is None:
        if run.status in RUN_NEEDS_EVENT:
            yield Mismatch("step_runs", run.id, "status", run.status, None, "no sealed event of that outcome")
        return
    assert sealed.event is not None
    if run.status not in RUN_MAY_SAY[sealed.status]:
        yield Mismatch("step_runs", run.id, "status", run.status, sealed.status, _entry(sealed.event))


def cross_check(session: Session, chain: str) -> list[Mismatch]:
    """Every field of the chain's requests and step runs that contradicts its sealed events."""
    if chain.startswith("approval:"):
        # A request outside any workflow (a workflow's request is checked with its chain;
        # events about it made outside the workflow, a rule created from it, are here).
        approvals = list(
            session.scalars(
                select(ApprovalRequest).where(
                    ApprovalRequest.id == chain[9:], ApprovalRequest.workflow_id.is_(None)
                )
            )
        )
        runs: list[StepRun] = []
    elif ":" in chain or chain == "platform":
        return []
    else:
        approvals = list(
            session.scalars(
                select(ApprovalRequest)
                .where(ApprovalRequest.workflow_id == chain)
                .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
            )
        )
        runs = list(session.scalars(select(StepRun).where(StepRun.workflow_id == chain).order_by(StepRun.id)))
    events = sealed_events(session, chain)
    found: list[Mismatch] = []
    known = {a.id for a in approvals}
    for approval in approvals:
        found += _check_request(approval, sealed_request(events, approval.id))
    for event in events:  # a request the trail opened whose row is gone or moved
        if event.event_type == "approval.requested" and event.approval_id not in known:
            if event.approval_id is not None:
                found.append(
                    Mismatch(
                        "approval_requests",
                        event.approval_id,
                        "workflow_id",
                        None,
                        chain,
                        f"{_entry(event)} (the row is missing or names another workflow)",
                    )
                )
    for run in runs:
        found += _check_run(run, sealed_run(events, run.id))
    return found


def _all_chains(session: Session, tenant: str | None) -> list[str]:
    events = WorkflowEvent.__table__.c
    votes = ApprovalResponse.__table__.c
    if tenant is not None:  # a tenant's user: only its workflows' chains
        return list(
            session.scalars(
                select(Workflow.id)
                .where(Workflow.tenant == tenant)
                .order_by(Workflow.created_at, Workflow.id)
            )
        )
    named = union(
        select(events.trail_chain).where(events.trail_chain.is_not(None)),
        select(votes.trail_chain).where(votes.trail_chain.is_not(None)),
    )
    chains = set(session.scalars(select(named.subquery().c[0])))
    # Unsealed rows name no chain: their content's chain is checked too.
    chains |= {e.home for e in _event_entries(session, events.trail_chain.is_(None))}
    chains |= {e.home for e in _vote_entries(session, votes.trail_chain.is_(None))}
    return sorted(chains)


def verify(db: Database, actor: str, workflow_id: str | None = None) -> list[ChainReport]:
    """The chain of ``workflow_id``, or every chain the actor may read (audit:read)."""
    with db.read() as session:
        tenant = tenant_of(session, actor)
        if workflow_id is not None:
            workflow = store.get_workflow(session, workflow_id, tenant=tenant)
            check(session, actor, Action.AUDIT_READ, workflow=workflow)
            return [verify_chain(session, workflow.id)]
        check(session, actor, Action.AUDIT_READ)
        return [verify_chain(session, chain) for chain in _all_chains(session, tenant)]


def first_break(reports: list[ChainReport]) -> BrokenLink | None:
    return next((r.broken for r in reports if r.broken is not None), None)


def require_intact(reports: list[ChainReport]) -> None:
    """Raise ``TrailBroken`` naming the first broken link, else the first row that
    contradicts its chain's sealed events, if any."""
    broken = first_break(reports)
    if broken is not None:
        raise TrailBroken(f"The audit trail is broken at {broken}.")
    contradicted = next((r for r in reports if r.mismatches), None)
    if contradicted is not None:
        raise TrailBroken(f"The audit trail is {contradicted.fault}.")


__all__ = [
    "BrokenLink",
    "Mismatch",
    "ChainReport",
    "SealedRequest",
    "SealedRun",
    "sealed_events",
    "sealed_request",
    "sealed_run",
    "call_of",
    "title_agrees",
    "cross_check",
    "check_chain",
    "verify_chain",
    "verify",
    "first_break",
    "require_intact",
]
