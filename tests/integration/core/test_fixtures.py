from core.store.db import Database


def test_migrated_database_has_the_audit_tables(db: Database) -> None:
    assert {"workflows", "workflow_events", "approval_requests"} <= set(db.table_names())
