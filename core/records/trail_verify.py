"""``python -m core audit verify``: recompute the trail's hash chains (core.records.trail)
and name the first broken link.

A chain is intact when its entries (events and votes together) hold the
positions 1..n without gap or repeat, each links to the hash of the one
before, each hash is the recomputed hash of its row, and each row's content
places it in that chain. An entry without a seal is broken too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select, union
from sqlalchemy.orm import Session

from core.base.errors import TrailBroken
from core.identity.permissions import Action, check
from core.records import rows as store
from core.records.trail import EVENT_FIELDS, GENESIS, VOTE_FIELDS, entry_hash, event_chain
from core.store.tables import ApprovalRequest, ApprovalResponse, Workflow, WorkflowEvent
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
class ChainReport:
    chain: str
    entries: int
    head: str  # the last entry's hash: keep it to detect a later rewrite of the whole chain
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


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
    return check_chain(chain, _entries_of(session, chain))


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
    """Raise ``TrailBroken`` naming the first broken link, if any."""
    broken = first_break(reports)
    if broken is not None:
        raise TrailBroken(f"The audit trail is broken at {broken}.")


__all__ = [
    "BrokenLink",
    "ChainReport",
    "check_chain",
    "verify_chain",
    "verify",
    "first_break",
    "require_intact",
]
