"""The Monitor page's alerts section in AppTest: open alerts, Acknowledge, resolved ones."""

from __future__ import annotations

from sqlalchemy import select

from core.engine import workflows as ops
from core.ops.alerts import evaluate_alerts
from core.store.db import Database
from core.store.tables import Alert
from tests.integration.dashboard.conftest import all_text, new_app, no_exception, open_page, sign_in
from tests.integration.ops_alerts.conftest import failed_workflow


def test_monitor_lists_open_alerts_and_an_approver_acknowledges_one(demo_db: Database) -> None:
    workflow = failed_workflow(demo_db, "Nightly *export*")
    [alert] = evaluate_alerts(demo_db).raised

    viewer = sign_in(new_app(), "viewer@example.com")
    open_page(viewer, "monitor")
    no_exception(viewer)
    assert "Alerts" in [s.value for s in viewer.subheader]
    text = all_text(viewer)
    assert "**Workflow failed**" in text and "Nightly \\*export\\*" in text  # shown literally
    assert not [b for b in viewer.button if b.key == f"alerts.ack.{alert.id}"]  # viewers only read

    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "monitor")
    at.button(key=f"alerts.ack.{alert.id}").click().run()
    no_exception(at)
    with demo_db.read() as session:
        stored = session.scalars(select(Alert)).one()
    assert stored.acknowledged_by == "admin@example.com" and stored.acknowledged_at is not None
    assert "Acknowledged by admin@\u2060example.com" in all_text(at)  # no mailto: link
    assert not [b for b in at.button if b.key == f"alerts.ack.{alert.id}"]

    ops.retry_workflow(demo_db, workflow.id, "admin@example.com")
    evaluate_alerts(demo_db)
    open_page(at, "monitor")
    no_exception(at)
    assert "No open alerts." in [s.value for s in at.success]
    [resolved] = [d.value for d in at.dataframe if "resolved" in d.value.columns]
    assert list(resolved["rule"]) == ["Workflow failed"]
    assert list(resolved["acknowledged by"]) == ["admin@example.com"]
