"""Export from SQLite, import into PostgreSQL: every row the same, and the work goes on."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import DEMO_INPUTS, load_demo
from core.ops.backup import (
    BackupFileInvalid,
    BackupSchemaMismatch,
    TargetNotEmpty,
    backup_tables,
    export_database,
    import_database,
)
from core.outbox.settings import save_channel_settings
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import ApprovalRequest, StepRun, Workflow

DEVOPS = "devops@example.com"


def run_demo(db: Database) -> dict[str, str]:
    """The demo run up to its approvals, one answered to the end, one half answered."""
    from core.identity.api_tokens import create_token

    workflows = dict(zip(DEMO_INPUTS, (w.id for w in load_demo(db)), strict=True))
    build_runner(db).run_until_idle()
    engine = ApprovalEngine(db)
    deploy = engine.list_pending_approvals(None, workflows["deployment_pipeline"])[0]
    engine.respond_to_approval(
        deploy.id, DEVOPS, "approve", {"change_ticket": "CHG-7", "window": "now"}, "window agreed"
    )
    review = engine.list_pending_approvals(None, workflows["document_review"])[0]
    engine.respond_to_approval(review.id, "legal@example.com", "approve", {"verdict": "publish"})
    build_runner(db).run_until_idle()
    create_token(db, "admin@example.com", "ci")
    with db.session() as session:
        save_channel_settings(
            session, "webhook", enabled=False, settings={"endpoints": ["http://127.0.0.1:9/hook"]}
        )
    return {"review_workflow": workflows["document_review"], "review": review.id}


def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.engine.connect() as conn:
        return {
            t.name: [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in backup_tables()
        }


def export_text(db: Database) -> str:
    out = io.StringIO()
    export_database(db, out)
    return out.getvalue()


@pytest.fixture
def demo_backup(sqlite_db: Database) -> tuple[Database, dict[str, str], str]:
    ids = run_demo(sqlite_db)
    return sqlite_db, ids, export_text(sqlite_db)


def test_sqlite_to_postgresql_is_lossless_and_the_workflow_goes_on(
    demo_backup: tuple[Database, dict[str, str], str], pg_db: Database, tmp_path: Path
) -> None:
    source, ids, text = demo_backup
    path = tmp_path / "backup.jsonl"
    path.write_text(text)
    with path.open() as handle:
        result = import_database(pg_db, handle)

    before, after = dump(source), dump(pg_db)
    assert all(
        before[name]
        for name in (
            "workflows",
            "step_runs",
            "approval_requests",
            "approval_assignees",
            "approval_responses",
            "workflow_events",
            "workflow_checkpoints",
            "notifications",
            "users",
            "api_tokens",
            "channel_configurations",
        )
    )
    for name, rows in before.items():
        assert after[name] == rows, f"{name} differs after import"
        assert result.inserted.get(name, 0) == len(rows)
    some_event = after["workflow_events"][0]
    assert some_event["created_at"].tzinfo is not None
    assert after["channel_configurations"][0]["enabled"] is False

    # The imported workflow carries on in PostgreSQL: second vote, run to the end.
    max_step_run = max(r["id"] for r in after["step_runs"])
    approval = ApprovalEngine(pg_db).respond_to_approval(
        ids["review"], "compliance@example.com", "approve", {"verdict": "publish"}
    )
    assert approval.status == "approved"
    build_runner(pg_db).run_until_idle()
    with pg_db.read() as session:
        workflow = session.get(Workflow, ids["review_workflow"])
        assert workflow is not None and workflow.status == "completed"
        new_runs = session.scalars(select(StepRun.id).where(StepRun.id > max_step_run)).all()
    assert new_runs  # new ids came from a sequence moved past the imported ones


def test_import_refuses_a_non_empty_database_unless_merging(
    demo_backup: tuple[Database, dict[str, str], str], pg_db: Database
) -> None:
    source, _, text = demo_backup
    import_database(pg_db, io.StringIO(text))
    with pytest.raises(TargetNotEmpty, match="--merge"):
        import_database(pg_db, io.StringIO(text))
    merged = import_database(pg_db, io.StringIO(text), merge=True)
    assert sum(merged.inserted.values()) == 0
    assert sum(merged.skipped.values()) == sum(len(r) for r in dump(source).values())
    assert dump(pg_db) == dump(source)


def test_a_file_from_another_schema_revision_is_refused(
    demo_backup: tuple[Database, dict[str, str], str], pg_db: Database
) -> None:
    _, _, text = demo_backup
    header, rest = text.split("\n", 1)
    changed = json.loads(header)
    changed["revision"] = "0001"
    with pytest.raises(BackupSchemaMismatch, match="revision 0001"):
        import_database(pg_db, io.StringIO(json.dumps(changed) + "\n" + rest))
    assert row_count(pg_db) == 0


def row_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return sum(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in backup_tables())


@pytest.mark.parametrize("damage", ["truncated", "cut_line", "garbage", "bad_timestamp"])
def test_a_damaged_file_is_refused_and_writes_nothing(
    demo_backup: tuple[Database, dict[str, str], str], pg_db: Database, damage: str
) -> None:
    _, _, text = demo_backup
    lines = text.splitlines(keepends=True)
    if damage == "truncated":  # whole lines lost: the trailer is missing
        broken = "".join(lines[: len(lines) // 2])
        expected = "incomplete"
    elif damage == "cut_line":  # cut in the middle of a line
        broken = text[: len(text) * 2 // 3]
        expected = "damaged at line"
    elif damage == "garbage":
        broken = "".join(lines[:-3]) + "}{ not json\n" + "".join(lines[-3:])
        expected = "damaged at line"
    else:
        broken = text.replace('"created_at":"', '"created_at":"yesterday', 1)
        expected = "not a timestamp"
    with pytest.raises(BackupFileInvalid, match=expected):
        import_database(pg_db, io.StringIO(broken))
    assert row_count(pg_db) == 0  # rows inserted before the damage were rolled back


def test_postgresql_back_to_sqlite(
    demo_backup: tuple[Database, dict[str, str], str], pg_db: Database, tmp_path: Path
) -> None:
    source, _, text = demo_backup
    import_database(pg_db, io.StringIO(text))
    target = Database(f"sqlite:///{tmp_path / 'again.db'}")
    try:
        target.upgrade()
        import_database(target, io.StringIO(export_text(pg_db)))
        assert dump(target) == dump(source)
        with target.read() as session:
            assert session.scalar(select(func.count()).select_from(ApprovalRequest))
    finally:
        target.dispose()
