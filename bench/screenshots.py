"""Screenshots of the dashboard's main pages for the README.

    python bench/screenshots.py [--out docs/screenshots]

Starts `streamlit run app.py` on a free loopback port over a fresh SQLite
demo database (with some history: decided approvals, a finished deployment),
signs in through the real sign-in form in Debian's Chromium
(/usr/bin/chromium) and saves 1280x800 PNGs.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from core.approvals.engine import ApprovalEngine  # noqa: E402
from core.definitions.definition_text import load_definition_file  # noqa: E402
from core.demo.scenarios import DEMO_INPUTS, DEMO_REQUESTER, template_path  # noqa: E402
from core.engine import workflows as ops  # noqa: E402
from core.runtime import build_runner, install_session_hooks, load_tools  # noqa: E402
from core.store.db import Database  # noqa: E402
from core.store.tables import ApprovalRequest, Workflow, utcnow  # noqa: E402
from tests.e2e.server import (  # noqa: E402
    UI_TIMEOUT_MS,
    VIEWPORT,
    launch_chromium,
    prepare_demo,
    sign_in,
    start_dashboard,
    stop,
    wait_for_app,
)

DEPLOY_FORM = {
    "change_ticket": "CHG-2041",
    "window": "tonight",
    "rollback_plan": "Redeploy the previous release.",
}


def _pending(db: Database, title: str) -> list[ApprovalRequest]:
    with db.read() as session:
        return list(
            session.scalars(
                select(ApprovalRequest)
                .where(ApprovalRequest.title == title, ApprovalRequest.status == "pending")
                .order_by(ApprovalRequest.created_at)
            ).all()
        )


def build_history(db_url: str) -> dict[str, str]:
    """The demo, plus a finished deployment, decided reviews and more requests waiting."""
    prepare_demo(db_url)
    db = Database(db_url)
    try:
        engine = ApprovalEngine(db)
        definition = load_definition_file(template_path("deployment_pipeline"))
        for service, version in (("billing-api", "4.2.1"), ("search", "1.9.0")):
            ops.create_workflow(
                db,
                definition,
                input_data={"service": service, "version": version},
                created_by="agent@example.com",
            )
        build_runner(db).run_until_idle(max_seconds=60)
        finished = _pending(db, "Production deploy approval")[0]
        engine.respond_to_approval(
            finished.id,
            "devops@example.com",
            "approve",
            data=DEPLOY_FORM,
            comment="Tested in staging.",
            channel="dashboard",
        )
        review = _pending(db, "Review the pricing page update")[0]
        engine.respond_to_approval(
            review.id, "legal@example.com", "approve", data={"verdict": "publish"}, channel="email"
        )
        engine.respond_to_approval(
            review.id,
            "editor@example.com",
            "approve",
            data={"verdict": "publish_with_edits", "notes": "Fix typo."},
            channel="slack",
        )
        budget = _pending(db, "Marketing campaign budget")[0]
        engine.respond_to_approval(
            budget.id, "manager@example.com", "approve", data={"approved_amount": 75000}, channel="dashboard"
        )
        build_runner(db).run_until_idle(max_seconds=60)
        # Agents, a supervised session and alerts for the newer pages.
        from core.agents.teams import start_team
        from core.conversations import sessions as conversations
        from core.ops.alerts import evaluate_alerts

        start_team(db, "research_brief", "Why do tides happen?", "manager@example.com")
        chat = conversations.start_session(db, "amy@acme.example", "support", title="Order ORD-77 is late")
        conversations.post_user_message(db, chat.id, "amy@acme.example", "Where is order ORD-77?")
        conversations.take_over(db, chat.id, "admin@example.com")
        conversations.inject(db, chat.id, "admin@example.com", "Hi Amy, I'm checking with the warehouse now.")
        conversations.post_user_message(db, chat.id, "amy@acme.example", "Thank you!")
        build_runner(db).run_until_idle(max_seconds=60)
        evaluate_alerts(db, utcnow() + timedelta(hours=23, minutes=30))
        # A second order whose payment is approved: its confirmation agent holds send_confirmation.
        order = ops.create_workflow(
            db,
            load_definition_file(template_path("order_processing")),
            input_data={**DEMO_INPUTS["order_processing"], "order_id": "ORD-1043"},
            created_by=DEMO_REQUESTER,
        )
        build_runner(db).run_until_idle(max_seconds=60)
        [charge] = engine.list_pending_approvals(workflow_id=order.id)
        engine.respond_to_approval(
            charge.id, "finance@example.com", "approve", data={"approved_amount": 12500}, channel="dashboard"
        )
        build_runner(db).run_until_idle(max_seconds=60)
        [held] = engine.list_pending_approvals(workflow_id=order.id)
        assert held.proposed_call is not None and held.proposed_call["tool"] == "send_confirmation"
        payment = _pending(db, "High-value payment")[0]
        waiting = _pending(db, "Production deploy approval")[0]
        assert finished.workflow_id is not None
        with db.read() as session:
            done = session.get(Workflow, finished.workflow_id)
            assert done is not None and done.status == "completed", done and done.status
        return {
            "approval": waiting.id,
            "workflow": finished.workflow_id,
            "session": chat.id,
            "payment": payment.id,
            "agent_call": held.id,
        }
    finally:
        db.dispose()


def capture(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="countersign-shots-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'countersign.db'}"
        db = Database(db_url)
        db.upgrade()
        db.dispose()
        ids = build_history(db_url)
        app = start_dashboard(db_url, Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                expect.set_options(timeout=UI_TIMEOUT_MS)

                def shot(
                    name: str, path: str, email: str, prepare: Callable[[Any], None] | None = None
                ) -> None:
                    # A context per shot: the session cookie would keep the last person signed in.
                    context = browser.new_context(viewport=VIEWPORT)
                    context.set_default_timeout(UI_TIMEOUT_MS)
                    page = context.new_page()
                    page.goto(f"{app.url}{path}")
                    wait_for_app(page)
                    sign_in(page, email)
                    if prepare is not None:
                        prepare(page)
                        wait_for_app(page)
                    target = out / f"{name}.png"
                    page.screenshot(path=str(target))
                    saved.append(target)
                    context.close()

                def inbox(page: Any) -> None:
                    # What the README's "first five minutes" step 1 shows: finance's Inbox.
                    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
                    expect(page.get_by_text("High-value payment").first).to_be_visible()

                def approval(page: Any) -> None:
                    field = page.get_by_role("textbox", name=re.compile("^Change ticket"))
                    expect(field).to_be_visible()
                    field.fill("CHG-2042")
                    page.get_by_role("heading", name="Your answer").scroll_into_view_if_needed()

                def workflows(page: Any) -> None:
                    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()

                def timeline(page: Any) -> None:
                    chart = page.locator('[data-testid="stPlotlyChart"]').first
                    expect(chart.locator(".barlayer .point").first).to_be_attached()
                    chart.scroll_into_view_if_needed()

                def rollback(page: Any) -> None:
                    page.get_by_role("tab", name="Checkpoints").click()
                    page.get_by_role("button", name="Rollback", exact=True).click()
                    dialog = page.get_by_role("dialog")
                    expect(dialog).to_be_visible()
                    dialog.get_by_label("Reason").fill("Error rate up after the deploy")

                def monitor(page: Any) -> None:
                    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
                    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()

                shot("inbox", "/", "finance@example.com", inbox)
                shot("approval", f"/?approval={ids['approval']}", "devops@example.com", approval)
                shot("workflows", "/workflows", "admin@example.com", workflows)
                shot("workflow-timeline", f"/?workflow={ids['workflow']}", "admin@example.com", timeline)
                shot("rollback-dialog", f"/?workflow={ids['workflow']}", "admin@example.com", rollback)
                shot("monitor", "/monitor", "admin@example.com", monitor)

                def teams(page: Any) -> None:
                    page.get_by_text("Teams", exact=True).click()
                    expect(page.get_by_role("heading", name="Start a team")).to_be_visible()

                def sessions(page: Any) -> None:
                    expect(page.get_by_text("checking with the warehouse").first).to_be_visible()

                def logs(page: Any) -> None:
                    expect(page.get_by_role("heading", name="Execution logs")).to_be_visible()
                    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()

                def tenants(page: Any) -> None:
                    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
                    expect(page.get_by_role("button", name="Save flow")).to_be_attached()

                def down_to_the_answer(page: Any) -> None:
                    """A viewport tall enough for the page down to the answer's buttons: what
                    approving does and the one form (Streamlit scrolls inside its main section,
                    so a full-page screenshot would show no more than the viewport)."""
                    page.evaluate("""() => {
                        const main = '[data-testid="stMain"], [data-testid="stAppViewContainer"]';
                        for (const e of [document.scrollingElement,
                                         ...document.querySelectorAll(main)])
                            if (e) e.scrollTop = 0;
                    }""")
                    box = page.get_by_role("button", name="Reject", exact=True).bounding_box()
                    page.set_viewport_size(
                        {"width": VIEWPORT["width"], "height": int(box["y"] + box["height"] + 40)}
                    )

                def payment(page: Any) -> None:
                    field = page.get_by_role("spinbutton", name="Approved amount (USD)")
                    expect(field).to_be_visible()
                    field.fill("11000")
                    page.get_by_label("Comment").fill("Agreed with the customer: 11,000 now.")
                    down_to_the_answer(page)

                def agent_call(page: Any) -> None:
                    message = page.get_by_role("textbox", name="Message")
                    expect(message).to_be_visible()
                    message.fill("Your order ORD-1043 is confirmed and paid. It ships on Friday.")
                    down_to_the_answer(page)

                shot("approval-payment", f"/?approval={ids['payment']}", "finance@example.com", payment)
                shot(
                    "approval-agent-call",
                    f"/?approval={ids['agent_call']}",
                    "manager@example.com",
                    agent_call,
                )
                shot("agents-teams", "/agents", "admin@example.com", teams)
                shot("sessions", f"/sessions?session={ids['session']}", "admin@example.com", sessions)
                shot("execution-logs", "/logs", "admin@example.com", logs)
                shot("tenants", "/tenants", "admin@example.com", tenants)
                browser.close()
        finally:
            stop(app.process)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    # What every Countersign process sets up (core.runtime): the demo's flows name its tools.
    install_session_hooks()
    load_tools()
    for path in capture(args.out):
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
