"""The tamper-evident trail: one SHA-256 hash chain per workflow over its
events (``workflow_events``) and votes (``approval_responses``).

Every entry carries, in the same row and the same transaction that writes it:

* ``trail_chain``: the chain it belongs to: its workflow's id (a vote: its
  request's workflow), else ``session:<id>`` (a supervised conversation's
  events), ``approval:<id>`` (a request outside any workflow) or
  ``platform`` (accounts, tenants, agent profiles, refusals without a workflow);
* ``trail_seq``: its position in the chain, 1, 2, 3, ... across both tables;
* ``trail_prev``: the previous entry's ``trail_hash`` (64 zeros for the first);
* ``trail_hash``: SHA-256 of the canonical JSON of the entry's content
  (every column but the id and these four), its chain, position and
  ``trail_prev``.

Changing, deleting or moving an entry breaks its own hash or the next one's
link; ``core.records.trail_verify`` recomputes the chains and names the first broken
link. Sealing happens in one place: a ``before_flush`` hook for every event
and vote added through the ORM (``core.records.rows.append_event``, votes, conversation
events, refusals) and ``seal_rows`` for the runner's multi-row INSERT of step
events (``core.records.rows.insert_runner_events``).

Concurrent writers: before reading a chain's head, a transaction locks its
chain: a workflow's row (``SELECT ... FOR UPDATE``; the engine's existing
per-workflow lock, which most writers already hold) or, for the other
chains, a transaction-level advisory lock on PostgreSQL. SQLite serialises
writers with ``BEGIN IMMEDIATE``. The unique (chain, position) index is the
backstop: a fork is refused by the database, never stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import event, select, text, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from core.base.trail_hash import (
    EVENT_FIELDS,
    GENESIS,
    PLATFORM_CHAIN,
    VOTE_FIELDS,
    canonical,
    content_of,
    entry_hash,
    event_chain,
)
from core.store.tables import ApprovalRequest, ApprovalResponse, Workflow, WorkflowEvent, utcnow

_HEADS = "countersign_trail_heads"  # session.info: chain -> (seq, hash) within this transaction
_HELD = "countersign_trail_held"  # session.info: the chains whose workflow row this transaction locked


# -- chains, locks, heads ----------------------------------------------------------------


def advisory_key(chain: str) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` derived from the chain's name."""
    return int.from_bytes(hashlib.sha256(chain.encode()).digest()[:8], "big", signed=True)


def lock_chain(session: Session, chain: str) -> None:
    """Hold the chain until this transaction ends (see the module's docstring)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises every writer
    if ":" in chain or chain == PLATFORM_CHAIN:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(chain)})
    else:
        session.execute(select(Workflow.id).where(Workflow.id == chain).with_for_update())


def stored_head(session: Session | Connection, chain: str) -> tuple[int, str]:
    """The chain's last (position, hash) in the database; (0, GENESIS) when empty.
    One statement over both tables (it is on the runner's path: one per step)."""
    heads = union_all(
        *(
            select(table.trail_seq.label("seq"), table.trail_hash.label("digest"))
            .where(table.trail_chain == chain)
            .order_by(table.trail_seq.desc())
            .limit(1)
            .subquery()
            .select()
            for table in (WorkflowEvent, ApprovalResponse)
        )
    ).subquery()
    last = session.execute(select(heads.c.seq, heads.c.digest).order_by(heads.c.seq.desc()).limit(1)).first()
    return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)


def chain_held(session: Session, workflow_id: str) -> None:
    """The caller locked the workflow's row (``SELECT ... FOR UPDATE``) in this
    transaction: that holds its chain, so sealing its entries takes no second lock."""
    session.info.setdefault(_HELD, set()).add(str(workflow_id))


def _next(session: Session, chain: str, *, locked: bool) -> tuple[int, str]:
    heads: dict[str, tuple[int, str]] = session.info.setdefault(_HEADS, {})
    if chain not in heads:
        if not locked and chain not in session.info.get(_HELD, ()):
            lock_chain(session, chain)
        heads[chain] = stored_head(session, chain)
    seq, prev = heads[chain]
    return seq + 1, prev


def _advance(session: Session, chain: str, seq: int, digest: str) -> None:
    session.info[_HEADS][chain] = (seq, digest)


def seal(
    session: Session, kind: str, chain: str, row: Mapping[str, Any], *, locked: bool = False
) -> dict[str, Any]:
    """The four trail columns for a new entry of ``chain`` whose columns are ``row``
    (``locked``: the caller already holds the chain's lock, e.g. its workflow's row)."""
    seq, prev = _next(session, chain, locked=locked)
    columns = _trail_columns(kind, chain, seq, prev, row)
    _advance(session, chain, seq, columns["trail_hash"])
    return columns


def _trail_columns(kind: str, chain: str, seq: int, prev: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The four trail columns of an entry at ``seq`` after ``prev`` in ``chain``."""
    digest = entry_hash(kind, content_of(kind, row), chain=chain, seq=seq, prev=prev)
    return {"trail_chain": chain, "trail_seq": seq, "trail_prev": prev, "trail_hash": digest}


def seal_event_rows(
    conn: Connection, workflow_id: str, rows: list[dict[str, Any]], *, head: tuple[int, str] | None = None
) -> None:
    """Seal a workflow's event rows written on ``conn`` outside the ORM (the runner's
    one-statement step path), in place and in order: one SELECT of the chain's head,
    unless the caller read it (``head``, as ``stored_head`` returns it) while holding
    the chain. The caller holds the chain (the workflow's row lock; SQLite: BEGIN
    IMMEDIATE)."""
    chain = event_chain(workflow_id, None, None)
    seq, prev = head if head is not None else stored_head(conn, chain)
    for row in rows:
        seq += 1
        row.update(_trail_columns("event", chain, seq, prev, row))
        prev = row["trail_hash"]


def seal_rows(session: Session, rows: list[dict[str, Any]], *, locked: bool = False) -> None:
    """Seal event rows about to be inserted with SQLAlchemy Core (in place, in order);
    ``locked``: the caller holds their workflows' row locks (the runner does)."""
    session.flush()  # entries added through the ORM first: they come first in the chain
    for row in rows:
        row.setdefault("created_at", utcnow())
        row.update(
            seal(
                session,
                "event",
                event_chain(row.get("workflow_id"), row.get("session_id"), row.get("approval_id")),
                row,
                locked=locked and bool(row.get("workflow_id")),
            )
        )


# -- the ORM hook -------------------------------------------------------------------------


def _vote_chain(session: Session, vote: ApprovalResponse) -> str:
    approval = session.get(ApprovalRequest, vote.approval_id)
    if approval is None:  # opened in this same flush
        approval = next(
            (o for o in session.new if isinstance(o, ApprovalRequest) and o.id == vote.approval_id), None
        )
    workflow_id = approval.workflow_id if approval is not None else None
    return str(workflow_id) if workflow_id else f"approval:{vote.approval_id}"


def _fill_defaults(entry: WorkflowEvent | ApprovalResponse) -> None:
    """Column defaults are applied at INSERT, after this hook: apply them now, so the
    hash covers what is stored."""
    if entry.created_at is None:
        entry.created_at = utcnow()
    if entry.data is None:
        entry.data = {}
    if isinstance(entry, ApprovalResponse):
        entry.level = 0 if entry.level is None else entry.level
        entry.channel = entry.channel or "api"
        entry.comment = entry.comment or ""


def _columns(entry: WorkflowEvent | ApprovalResponse, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in fields}


@event.listens_for(Session, "before_flush")
def _seal_new_entries(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for entry in list(session.new):  # in the order they were added
        if isinstance(entry, WorkflowEvent | ApprovalResponse) and entry.trail_hash is None:
            _fill_defaults(entry)
            if isinstance(entry, WorkflowEvent):
                kind = "event"
                chain = event_chain(entry.workflow_id, entry.session_id, entry.approval_id)
                row = _columns(entry, EVENT_FIELDS)
            else:
                kind, chain, row = "vote", _vote_chain(session, entry), _columns(entry, VOTE_FIELDS)
            for name, value in seal(session, kind, chain, row).items():
                setattr(entry, name, value)


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction: SessionTransaction) -> None:
    # A head read under this transaction's lock is only known while it lasts
    # (a flush's own subtransaction ending changes nothing).
    if transaction.parent is None or transaction.nested:
        session.info.pop(_HEADS, None)
        session.info.pop(_HELD, None)


__all__ = [
    "GENESIS",
    "PLATFORM_CHAIN",
    "EVENT_FIELDS",
    "VOTE_FIELDS",
    "canonical",
    "chain_held",
    "content_of",
    "entry_hash",
    "event_chain",
    "lock_chain",
    "stored_head",
    "seal",
    "seal_rows",
]
