"""The tamper-evident trail on real databases: every event and vote is chained
in its workflow's hash chain as it is written; ``audit verify`` passes, then
names the row an UPDATE that bypasses the append-only trigger changed; the
chain holds under concurrent writers; the auditor's export says who was asked,
what they saw and decided, what ran, through which channel and identity."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text, update

from cli.main import main
from core.approvals.engine import ApprovalEngine
from core.base.errors import NotAuthorized, TrailBroken
from core.engine import workflows as ops
from core.identity.permissions import Credential, acting_with
from core.identity.users import add_user
from core.identity.verified import vouched
from core.ops.audit_export import audit_record
from core.ops.audit_files import export
from core.records import rows as store
from core.records.trail import GENESIS
from core.records.trail_verify import require_intact, verify
from core.store.db import Database
from core.store.tables import ApprovalRequest, ApprovalResponse, StepRun, WorkflowEvent
from tests.helpers.approved_calls import FINANCE, PROPOSED, pay_registry, pay_step, run
from tests.helpers.engine import REQUESTER, Calls

AUDITOR = "auditor@example.com"
SECOND = "controller@example.com"


def _answered_payment(db: Database, calls: Calls) -> tuple[str, str]:
    """A guarded payment two people approve (Slack, then an API token); it then runs."""
    registry = pay_registry(calls)
    add_user(db, REQUESTER, role="service")
    add_user(db, FINANCE, role="approver")
    add_user(db, SECOND, role="approver")
    add_user(db, AUDITOR, role="viewer")
    step = pay_step(requested_from=[FINANCE, SECOND], approval_threshold=2)
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay an invoice", "steps": [step]},
        input_data={"amount": PROPOSED["amount"], "note": PROPOSED["note"]},
        created_by=REQUESTER,
    ).id
    run(db, registry)
    engine = ApprovalEngine(db)
    [approval] = engine.list_pending_approvals(workflow_id=workflow_id)
    with vouched(slack_user_id="U0FINANCE"):
        engine.respond_to_approval(approval.id, FINANCE, "approve", comment="ok", channel="slack")
    with acting_with(Credential(SECOND, "erp-bot", None)):
        engine.respond_to_approval(approval.id, SECOND, "approve", channel="api")
    run(db, registry)
    assert calls.of("pay") == [PROPOSED]
    return workflow_id, approval.id


def _entries(db: Database, workflow_id: str) -> list[tuple[int, str, str]]:
    with db.read() as session:
        rows = [
            (e.trail_seq, e.trail_prev, e.trail_hash)
            for e in session.scalars(select(WorkflowEvent).where(WorkflowEvent.trail_chain == workflow_id))
        ]
        rows += [
            (v.trail_seq, v.trail_prev, v.trail_hash)
            for v in session.scalars(
                select(ApprovalResponse).where(ApprovalResponse.trail_chain == workflow_id)
            )
        ]
    return sorted(rows)  # type: ignore[arg-type]


def _tamper(db: Database, table: str, statement: str, **params: Any) -> None:
    """Run an UPDATE or DELETE with the append-only trigger lifted (a test database only)."""
    with db.engine.begin() as conn:
        if db.is_postgres:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        else:
            conn.execute(text(f"DROP TRIGGER {table}_no_update"))
            conn.execute(text(f"DROP TRIGGER {table}_no_delete"))
        conn.execute(text(statement), params)


def test_every_event_and_vote_is_chained_as_written(db: Database, calls: Calls) -> None:
    workflow_id, _ = _answered_payment(db, calls)
    entries = _entries(db, workflow_id)
    # One chain across both tables: positions 1..n, each linked to the one before.
    assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
    assert entries[0][1] == GENESIS
    for (_, _, digest), (_, prev, _) in zip(entries, entries[1:], strict=False):
        assert prev == digest
    with db.read() as session:
        votes = session.scalars(select(ApprovalResponse)).all()
    assert len(votes) == 2 and all(v.trail_chain == workflow_id for v in votes)
    [report] = verify(db, AUDITOR, workflow_id)
    assert report.intact and report.entries == len(entries) and report.head == entries[-1][2]


@pytest.mark.parametrize("table", ["approval_responses", "workflow_events"])
def test_verify_names_the_row_a_raw_update_changed(
    db: Database,
    calls: Calls,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workflow_id, approval_id = _answered_payment(db, calls)
    monkeypatch.setenv("DATABASE_URL", db_url)
    main(["audit", "verify", workflow_id, "--as", AUDITOR])
    assert "intact" in capsys.readouterr().out
    with db.read() as session:
        if table == "approval_responses":
            row_id = session.scalar(select(ApprovalResponse.id).where(ApprovalResponse.approver == FINANCE))
            statement = "UPDATE approval_responses SET decision = 'reject' WHERE id = :id"
        else:
            row_id = session.scalar(
                select(WorkflowEvent.id).where(
                    WorkflowEvent.approval_id == approval_id, WorkflowEvent.event_type == "approval.decided"
                )
            )
            statement = "UPDATE workflow_events SET actor = 'mallory@example.com' WHERE id = :id"
    _tamper(db, table, statement, id=row_id)

    [report] = verify(db, AUDITOR, workflow_id)
    assert report.broken is not None
    assert (report.broken.table, report.broken.row_id) == (table, row_id)
    assert "hash mismatch" in report.broken.reason
    with pytest.raises(TrailBroken, match=f"{table} row {row_id} "):
        require_intact([report])
    # The command line says the same and exits non-zero (also without a workflow given).
    for argv in (["audit", "verify", workflow_id], ["audit", "verify"]):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--as", AUDITOR])
        assert exited.value.code == 4  # a Conflict (core.base.errors): the trail does not hold
        assert f"{table} row {row_id} (chain {workflow_id}" in capsys.readouterr().err


def test_a_deleted_entry_breaks_the_link_of_the_next(db: Database, calls: Calls) -> None:
    workflow_id, _ = _answered_payment(db, calls)
    with db.read() as session:
        events = session.scalars(
            select(WorkflowEvent)
            .where(WorkflowEvent.trail_chain == workflow_id)
            .order_by(WorkflowEvent.trail_seq)
        ).all()
    victim = events[3]
    _tamper(db, "workflow_events", "DELETE FROM workflow_events WHERE id = :id", id=victim.id)
    [report] = verify(db, AUDITOR, workflow_id)
    assert report.broken is not None and report.broken.seq == victim.trail_seq + 1
    assert "missing or deleted" in report.broken.reason


def test_concurrent_writers_keep_one_unbroken_chain(db: Database) -> None:
    """Writers appending to one workflow at once queue on its lock: no fork, no gap."""
    add_user(db, REQUESTER, role="service")
    workflow_id = ops.create_workflow(
        db,
        {"name": "busy", "steps": [{"name": "a", "type": "tool", "tool": "do", "args": {}}]},
        created_by=REQUESTER,
    ).id
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(8):
                with db.session() as session:
                    store.append_event(
                        session, "note.added", "system", workflow_id=workflow_id, data={"writer": n, "i": i}
                    )
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = _entries(db, workflow_id)
    assert len(entries) >= 48 and [s for s, _, _ in entries] == list(range(1, len(entries) + 1))
    [report] = verify(db, "system", workflow_id)
    assert report.intact


def test_the_export_tells_an_auditor_who_saw_decided_and_ran_what(
    db: Database,
    calls: Calls,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
) -> None:
    workflow_id, approval_id = _answered_payment(db, calls)
    record = audit_record(db, AUDITOR, workflow_id)
    assert record.trail["intact"] is True
    [request] = record.requests
    assert request.asked[0]["round"] == "opened"
    assert sorted(request.asked[0]["approvers"]) == sorted([FINANCE, SECOND])
    assert request.shown["call"]["tool"] == "pay"
    assert request.shown["call"]["arguments"] == PROPOSED
    by = {v.approver: v for v in request.votes}
    assert by[FINANCE].channel == "slack" and by[FINANCE].identity_details is not None
    assert by[FINANCE].identity_details["slack_user_id"] == "U0FINANCE"
    assert "Slack user id U0FINANCE" in by[FINANCE].identity
    assert by[SECOND].channel == "api" and "token 'erp-bot'" in by[SECOND].identity
    assert request.outcome == "approved" and request.released_call is not None
    assert request.released_call["arguments"] == PROPOSED
    assert request.ran is not None and request.ran["status"] == "completed"

    lines = [json.loads(line) for line in export(db, AUDITOR, workflow_id, "jsonl").splitlines()]
    assert [line["record"] for line in lines[:3]] == ["workflow", "trail", "request"]
    entries = [line for line in lines if line["record"] == "entry"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert lines[1]["head"] == entries[-1]["hash"]

    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "record.pdf"
    main(["audit", "export", workflow_id, "--format", "pdf", "--output", str(out), "--as", AUDITOR])
    pdf = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(out.read_bytes())).pages)
    for expected in (
        "Trail verified",
        FINANCE,
        SECOND,
        "U0FINANCE",
        "erp-bot",
        "invoice 7",
        "released_call",
        "completed",
    ):
        assert expected in pdf, expected


def test_reading_the_trail_needs_audit_read(db: Database, calls: Calls) -> None:
    workflow_id, _ = _answered_payment(db, calls)
    with pytest.raises(NotAuthorized, match="audit:read"):
        verify(db, REQUESTER, workflow_id)  # a service account
    with pytest.raises(NotAuthorized, match="audit:read"):
        export(db, REQUESTER, workflow_id, "jsonl")


def test_values_each_database_stores_its_own_way_still_verify(db: Database) -> None:
    """JSONB gives 1e20 back as an integer and reorders keys; the hash is of the canonical
    form, so what was sealed is what is verified."""
    with db.session() as session:
        store.append_event(
            session,
            "note.added",
            "system",
            data={
                "big": 1e20,
                "whole": 2.0,
                "small": 1.5e-7,
                "text": "Zürich ✓",
                "b": {"z": 1, "a": [1, None]},
            },
        )
    [report] = verify(db, "system")
    assert report.chain == "platform" and report.intact and report.entries == 1


def test_an_email_link_answer_names_its_recipient_and_a_backup_keeps_the_chain(
    db: Database, calls: Calls, tmp_path: Any
) -> None:
    from core.approvals.links import make_link_token, respond_with_link
    from core.ops.backup import export_database, import_database

    registry = pay_registry(calls)
    add_user(db, REQUESTER, role="service")
    add_user(db, FINANCE, role="approver")
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay", "steps": [pay_step()]},
        input_data={"amount": PROPOSED["amount"], "note": PROPOSED["note"]},
        created_by=REQUESTER,
    ).id
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    respond_with_link(db, make_link_token(approval.id, FINANCE, "approve", level=0))
    run(db, registry)
    [vote] = audit_record(db, "system", workflow_id).requests[0].votes
    assert vote.channel == "email" and vote.identity_details is not None
    assert vote.identity_details["link_recipient"] == FINANCE
    assert "sent to finance@example.com" in vote.identity

    # A backup moved to another database keeps the rows and their hashes: still intact.
    backup = io.StringIO()
    export_database(db, backup)
    copy = Database(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        copy.upgrade()
        backup.seek(0)
        import_database(copy, backup)
        [report] = verify(copy, "system", workflow_id)
        [original] = verify(db, "system", workflow_id)
        assert report.intact and report.head == original.head
    finally:
        copy.dispose()


# -- the rows beside the chain: checked against the sealed events ---------------------


def _set(db: Database, table: Any, row_id: Any, **values: Any) -> None:
    """Change a row that no trigger guards, as someone who can write the database could."""
    with db.session() as session:
        session.execute(update(table).where(table.id == row_id).values(**values))


def _tamper_request(db: Database, approval_id: str, what: str) -> tuple[str, Any, str]:
    """Change one field of a decided request (or of its run) behind the engine's back;
    returns the field the check must name."""
    with db.read() as session:
        approval = session.get(ApprovalRequest, approval_id)
        assert approval is not None and approval.released_call is not None
        released, run_id, decided_at = dict(approval.released_call), approval.step_run_id, approval.decided_at
    assert decided_at is not None
    if what == "decided_by":
        _set(db, ApprovalRequest, approval_id, decided_by="mallory@example.com")
    elif what == "status":
        _set(db, ApprovalRequest, approval_id, status="modified")
    elif what == "decided_at":
        _set(db, ApprovalRequest, approval_id, decided_at=decided_at - timedelta(days=1))
    elif what == "released_call.arguments":  # the tester's repro: the digest is left as it was
        released["arguments"] = {**released["arguments"], "amount": 7000}
        _set(db, ApprovalRequest, approval_id, released_call=released)
    elif what == "status (step run)":
        _set(db, StepRun, run_id, status="failed")
        return "step_runs", run_id, "status"
    return "approval_requests", approval_id, what


@pytest.mark.parametrize(
    "what", ["decided_by", "status", "decided_at", "released_call.arguments", "status (step run)"]
)
def test_a_changed_request_or_run_contradicts_the_sealed_trail(
    db: Database,
    calls: Calls,
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The tester's report: a request row changed after the decision (no trigger guards
    it) left `audit verify` saying intact and the export showing the changed values."""
    workflow_id, approval_id = _answered_payment(db, calls)
    before = audit_record(db, AUDITOR, workflow_id)
    [sealed] = before.requests
    assert before.trail["intact"] and before.trail["mismatches"] == [] and sealed.mismatches == []
    table, row_id, field = _tamper_request(db, approval_id, what)
    where = f"{table} row {row_id} field {field} "

    [report] = verify(db, AUDITOR, workflow_id)
    assert report.broken is None  # the chain itself holds: no event or vote was touched
    assert not report.intact
    assert [str(m) for m in report.mismatches if str(m).startswith(where)], report.mismatches
    with pytest.raises(TrailBroken, match=where):
        require_intact([report])
    monkeypatch.setenv("DATABASE_URL", db_url)
    capsys.readouterr()
    for argv in (["audit", "verify", workflow_id], ["audit", "verify"]):
        with pytest.raises(SystemExit) as exited:
            main([*argv, "--as", AUDITOR])
        assert exited.value.code == 4
        assert where in capsys.readouterr().err

    # The export states what the trail sealed, says it does not hold, and names the field.
    lines = [json.loads(line) for line in export(db, AUDITOR, workflow_id, "jsonl").splitlines()]
    trail = next(line for line in lines if line["record"] == "trail")
    request = next(line for line in lines if line["record"] == "request")
    assert trail["intact"] is False and any(m.startswith(where) for m in trail["mismatches"])
    assert any(m.startswith(where) for m in request["mismatches"])
    for key in ("outcome", "decided_by", "decided_at", "released_call", "ran"):
        assert request[key] == json.loads(json.dumps(getattr(sealed, key), default=str)), key
    assert request["released_call"]["arguments"] == PROPOSED
    if what == "released_call.arguments":  # the stored call no longer matches its digest
        assert any("its digest does not match" in m for m in request["mismatches"])
    pdf_bytes = export(db, AUDITOR, workflow_id, "pdf")
    pdf = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages)
    assert "TRAIL CONTRADICTED" in pdf and "Trail verified" not in pdf
    assert "Differs from the sealed trail" in pdf


def test_a_changed_vote_breaks_the_chain_and_the_export_says_so(db: Database, calls: Calls) -> None:
    """A vote is sealed itself: changing its data breaks its hash, named by verify, and
    the export's trail record is not intact."""
    workflow_id, _ = _answered_payment(db, calls)
    with db.read() as session:
        vote_id = session.scalar(select(ApprovalResponse.id).where(ApprovalResponse.approver == FINANCE))
    value = "CAST(:data AS JSONB)" if db.is_postgres else ":data"
    _tamper(
        db,
        "approval_responses",
        f"UPDATE approval_responses SET data = {value} WHERE id = :id",
        id=vote_id,
        data=json.dumps({"amount": 7000}),
    )
    [report] = verify(db, AUDITOR, workflow_id)
    assert report.broken is not None and (report.broken.table, report.broken.row_id) == (
        "approval_responses",
        vote_id,
    )
    record = audit_record(db, AUDITOR, workflow_id)
    assert record.trail["intact"] is False
    assert f"approval_responses row {vote_id} " in str(record.trail["broken"])


def test_untouched_rows_and_a_request_outside_a_workflow_agree_with_the_trail(
    db: Database, calls: Calls
) -> None:
    """No false alarm: an untouched workflow's requests and runs agree with its events,
    and so does a request outside any workflow, refused through the API."""
    workflow_id, _ = _answered_payment(db, calls)
    engine = ApprovalEngine(db)
    add_user(db, "boss@example.com", role="approver")
    alone = engine.request_approval(None, "ok?", requested_from="boss@example.com", requested_by=REQUESTER)
    engine.respond_to_approval(alone.id, "boss@example.com", "reject", channel="api")
    reports = verify(db, AUDITOR)
    assert all(r.intact for r in reports), [r.fault for r in reports if not r.intact]
    assert {workflow_id, f"approval:{alone.id}"} <= {r.chain for r in reports}


def test_a_workflow_started_as_a_mixed_case_address_verifies_intact(db: Database, calls: Calls) -> None:
    """``--as Agent@Example.com`` is agent@example.com: the request's row and its sealed
    approval.requested event name the same person (the event sealed the spelling given,
    so verify reported every such workflow as contradicted, for good)."""
    registry = pay_registry(calls)
    add_user(db, REQUESTER, role="service")
    add_user(db, AUDITOR, role="viewer")
    spelled = " " + REQUESTER.title() + " "
    workflow_id = ops.create_workflow(
        db,
        {"name": "pay an invoice", "steps": [pay_step()]},
        input_data={"amount": PROPOSED["amount"], "note": PROPOSED["note"]},
        created_by=spelled,
    ).id
    run(db, registry)
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow_id)
    assert approval.requested_by == REQUESTER
    [report] = verify(db, AUDITOR, workflow_id)
    assert report.intact, report
    ApprovalEngine(db).respond_to_approval(approval.id, FINANCE, "approve")
    run(db, registry)
    [report] = verify(db, AUDITOR, workflow_id)
    assert report.intact, report
    assert calls.of("pay") == [PROPOSED]
