"""Monitor and Settings pages, and the aggregates behind them on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from core.approvals import inbox as reports
from core.approvals import monitor
from core.approvals.engine import ApprovalEngine
from core.demo.scenarios import load_demo
from core.ops.settings_report import check_database, masked_url
from core.runtime import build_runner
from core.store.db import Database
from tests.integration.channels.conftest import free_port
from tests.integration.dashboard.conftest import (
    _app_over,
    all_text,
    new_app,
    no_exception,
    open_page,
    pending_for,
    plotly_specs,
    sign_in,
)


def test_monitor_draws_its_charts(demo_db: Database) -> None:
    approval = pending_for(demo_db, "devops@example.com")[0]
    ApprovalEngine(demo_db).respond_to_approval(approval.id, "devops@example.com", "reject")
    runner = build_runner(demo_db, runner_id="monitor-runner")
    runner._register()
    at = sign_in(new_app(), "viewer@example.com")
    open_page(at, "monitor")
    no_exception(at)
    metrics = {m.proto.label: m.proto.body for m in at.get("metric")}
    assert metrics["Waiting for a decision"] == "3"
    assert metrics["Decided"] == "1"
    titles = [spec["layout"]["title"]["text"] for spec in plotly_specs(at)]
    assert titles == [
        "Approval requests per day",
        "Time to decision",
        "Workflows by status",
        "Runner heartbeat (seconds since last seen)",
        # approval analytics (core.ops.analytics); no approving vote: no rubber stamps
        "Time to decision by approval type",
        "Time to decision by channel",
        "Time to decision by approver",
    ]
    assert metrics["Requests"] == "4"
    assert "**1** of 1 runners alive" in all_text(at)


def test_monitor_without_runners_says_how_to_start_one(demo_db: Database) -> None:
    at = sign_in(new_app(), "viewer@example.com")
    open_page(at, "monitor")
    assert "No runner has ever reported" in all_text(at)


def test_settings_show_masked_configuration_and_test_the_database(
    demo_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret-token-1234")
    # Slack's API stands at a loopback port where nothing listens: the test send fails.
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{free_port()}/api/")
    monkeypatch.setenv("SLACK_USER_MAP", '{"admin@example.com": "U0ADMIN"}')
    monkeypatch.delenv("COUNTERSIGN_MODEL_PROVIDER", raising=False)
    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    no_exception(at)
    text = all_text(at)
    assert "sqlite" in text and "Runner: external" in text
    shown = " ".join(str(v) for d in at.dataframe if "value" in d.value.columns for v in d.value["value"])
    assert "xoxb-very-secret-token-1234" not in shown and "••••1234" in shown
    at.button(key="settings.test.database").click().run()
    assert [s.value for s in at.success] == ["The database answered SELECT 1."]
    slack = next(b for b in at.button if b.label == "Test Slack")
    slack.click().run()
    [failure] = [w.value for w in at.warning]
    assert failure.startswith("The slack test failed:")
    model = next(b for b in at.button if b.label == "Test Agent model")
    model.click().run()
    assert any(s.value.startswith("rehearsal (no LLM): No model is configured") for s in at.success)
    email = next(b for b in at.button if b.label == "Test Email (SMTP)")
    email.click().run()
    assert "Email (SMTP) is not configured." in [w.value for w in at.warning]


def test_database_url_password_is_masked() -> None:
    shown = masked_url("postgresql+psycopg://app:s3cret-pw@db.internal:5432/countersign")
    assert "s3cret-pw" not in shown and shown.startswith("postgresql+psycopg://app:***@db.internal")


# -- the aggregates, on both databases ------------------------------------------------------


@pytest.fixture
def demo_on_both(db: Database) -> Iterator[Database]:
    load_demo(db)
    build_runner(db, runner_id="reports-setup").run_until_idle(max_seconds=60)
    yield db


def test_report_queries_on_both_databases(demo_on_both: Database) -> None:
    db = demo_on_both
    engine = ApprovalEngine(db)
    deploy = pending_for(db, "devops@example.com")[0]
    engine.respond_to_approval(
        deploy.id, "devops@example.com", "approve", data={"change_ticket": "CHG-1", "window": "now"}
    )
    payment = pending_for(db, "finance@example.com")[0]
    engine.expire_approval(payment.id)  # escalates to the admin first
    assert check_database(db).ok

    per_day = monitor.approvals_per_day(db)
    assert sum(n for _, _, n in per_day) == 4
    assert {status for _, status, _ in per_day} == {"approved", "pending"}
    assert len({day for day, _, _ in per_day}) == 1 and len(per_day[0][0]) == 10
    buckets = monitor.time_to_decision(db)
    assert buckets[0] == ("< 1 min", 1) and sum(n for _, n in buckets) == 1
    totals = monitor.approval_totals(db)
    assert (totals["pending"], totals["approved"], totals["escalated"]) == (3, 1, 1)
    assert sum(monitor.workflows_by_status(db).values()) == 4

    summary = reports.inbox_summary(db, "admin@example.com")
    assert (summary.total, summary.expiring_soon) == (1, 1)
    assert list(summary.by_workflow.values()) == [("Order processing", 1)]
    assert summary.by_type == {"budget": 1}
    assert [a.id for a in reports.inbox(db, "admin@example.com", reports.InboxFilter(channel="email"))] == [
        payment.id
    ]
    assert reports.inbox(db, "admin@example.com", reports.InboxFilter(channel="slack")) == []


def test_dashboard_pages_on_postgresql(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db = Database(pg_url)
    try:
        load_demo(db)
        build_runner(db, runner_id="pg-setup").run_until_idle(max_seconds=60)
        with _app_over(monkeypatch, pg_url):
            at: AppTest = sign_in(new_app(), "finance@example.com")
            no_exception(at)
            assert [link.proto.label for link in at.get("page_link")] == ["High-value payment"]
            for page in ("workflows", "monitor"):
                open_page(at, page)
                no_exception(at)
            approval = pending_for(db, "finance@example.com")[0]
            open_page(at, "approval", approval=approval.id)
            at.button(key="approval.approve").click().run()
            no_exception(at)
            assert ApprovalEngine(db).get(approval.id).status == "approved"
    finally:
        db.dispose()


def test_inbox_pages_follow_the_engine_order_on_both_databases(db: Database) -> None:
    from core.identity.users import add_user

    add_user(db, "ops@example.com", role="approver", groups=["ops"])
    engine = ApprovalEngine(db)
    for n, timeout in enumerate(["3h", None, "30m", None, "2d", "3h", None, "1h"]):
        engine.request_approval(
            None,
            f"Request {n}",
            requested_from="ops" if n % 2 else "ops@example.com",
            timeout=timeout,
            requested_by="agent@example.com",
        )
    engine.request_approval(
        None, "Someone else's", requested_from="cfo@example.com", requested_by="agent@example.com"
    )
    expected = [a.id for a in engine.list_pending_approvals(requested_from="ops@example.com")]
    assert len(expected) == 8
    paged = [
        a.id
        for offset in range(0, 9, 3)
        for a in reports.inbox(db, "ops@example.com", limit=3, offset=offset)
    ]
    assert paged == expected
    summary = reports.inbox_summary(db, "ops@example.com")
    assert (summary.total, summary.expiring_soon) == (8, 4)  # 30m, 1h, 3h, 3h; not 2d


def test_settings_store_non_secret_channel_settings_and_refuse_secrets(demo_db: Database) -> None:
    from core.channels.registry import read_channel_settings

    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    at.text_area(key="channel.webhook.settings").input('{"urls": ["http://127.0.0.1:9/hook"]}')
    at.button(key="channel.webhook.save").click().run()
    no_exception(at)
    assert "Saved the webhook settings." in [s.value for s in at.success]
    assert read_channel_settings(demo_db, "webhook") == (True, {"urls": ["http://127.0.0.1:9/hook"]})

    at.text_area(key="channel.slack.settings").input('{"bot_token": "xoxb-123"}')
    at.button(key="channel.slack.save").click().run()
    assert any("look like secrets" in e.value for e in at.error)
    assert read_channel_settings(demo_db, "slack") == (True, {})

    at.checkbox(key="channel.email.enabled").uncheck()
    at.text_area(key="channel.email.settings").input("[1, 2]")
    at.button(key="channel.email.save").click().run()
    assert "Settings: must be a JSON object." in [e.value for e in at.error]
    assert read_channel_settings(demo_db, "email") == (True, {})


def test_settings_refuse_a_token_name_longer_than_it_stores(demo_db: Database) -> None:
    """SQLite stored such a name whole (PostgreSQL failed in the driver): now a sentence."""
    from core.identity.api_tokens import list_tokens

    before = len(list_tokens(demo_db))
    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    at.text_input(key="tokens.new.name").input("n" * 201)
    at.button(key="tokens.new.submit").click().run()
    no_exception(at)
    assert any("name: 201 characters, at most 200" in e.value for e in at.error), [e.value for e in at.error]
    assert len(list_tokens(demo_db)) == before
    at.text_input(key="tokens.new.name").input("n" * 200)
    at.button(key="tokens.new.submit").click().run()
    assert len(list_tokens(demo_db)) == before + 1
