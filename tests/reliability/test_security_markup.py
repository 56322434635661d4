"""HTML, script and Slack markup in agent-written titles and descriptions come out
inert everywhere a person reads them: the approval email (Jinja2 autoescape, a
one-line subject), Slack messages, replies and the ``/approvals`` list (mrkdwn
escaping of ``&``, ``<``, ``>``; the rest plain text), the gateway's email
confirmation and result pages, the Gradio approver page, and the dashboard
(AppTest: no markdown element that carries the text allows HTML)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import markupsafe
import pytest
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from core.approvals.links import make_link_token
from core.identity.users import add_user
from core.store.db import Database
from gateway.approver_answers import details
from gateway.slack import handle_command, handle_interaction
from tests.helpers.browser import answer_form
from tests.integration.dashboard.conftest import _app_over, new_app, no_exception, open_page, sign_in
from tests.integration.gateway.conftest import BOSS, waiting_workflow
from tests.integration.gateway.test_slack import BOSS_SLACK, click
from tests.reliability.report import AttackTally, record_attacks

PAYLOADS = [
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(1)>',
    '<a href="javascript:alert(1)">open</a>',
    "<https://evil.example/login|Click to verify> <!channel> <@U0BOSS>",
    "Pay now\r\nBcc: attacker@evil.example",
]
# Live markup a payload could leave behind if anything rendered it raw.
LIVE = ("<script", "<img", "<svg", '<a href="javascript', "<https://evil", "<!channel>", "<@u0boss>")
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    import core.identity.users

    monkeypatch.setattr(core.identity.users, "SCRYPT_N", 2**4)


def live_markup(text: str) -> list[str]:
    lowered = text.lower()
    return [marker for marker in LIVE if marker in lowered]


def inert_html(text: str, payload: str) -> bool:
    """No live markup, and the payload there as escaped text (not dropped)."""
    visible = " ".join(payload.split())  # a title's line breaks may be folded
    escaped = {
        str(markupsafe.escape(visible)),
        html.escape(visible),
        str(markupsafe.escape(payload)),
        html.escape(payload),
    }
    return not live_markup(text) and any(e in text for e in escaped)


def mrkdwn_texts(blocks: Any) -> list[str]:
    """Every mrkdwn text object in a Block Kit structure."""
    found: list[str] = []
    if isinstance(blocks, dict):
        if blocks.get("type") == "mrkdwn":
            found.append(str(blocks.get("text")))
        for value in blocks.values():
            found += mrkdwn_texts(value)
    elif isinstance(blocks, list):
        for item in blocks:
            found += mrkdwn_texts(item)
    return found


def inert_mrkdwn(texts: list[str]) -> bool:
    """Slack parses <...> in mrkdwn as links and mentions: none may come from the agent."""
    return bool(texts) and not any("<" in t or ">" in t for t in texts)


def test_agent_markup_is_inert_in_emails_slack_and_gateway_pages(
    request: pytest.FixtureRequest, db: Database, client: TestClient
) -> None:
    tally = AttackTally("HTML, script, Slack markup in agent titles and descriptions")
    for payload in PAYLOADS:
        check_one_payload(db, client, payload, tally)
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures


def check_one_payload(db: Database, client: TestClient, payload: str, tally: AttackTally) -> None:
    from core.channels.email import render_approval_email
    from core.channels.notifications import approval_facts
    from core.channels.slack import approval_blocks, fallback_text

    _, approval = waiting_workflow(db, {"title": f"Pay {payload}", "description": f"Note: {payload}"})
    with db.read() as session:
        facts = approval_facts(session, approval.id)
    assert facts is not None
    name = f"{payload!r} in"

    email = render_approval_email(facts, BOSS, "approval.requested")
    tally.check(inert_html(email["html"], payload), f"{name} email HTML")
    tally.check("\r" not in email["subject"] and "\n" not in email["subject"], f"{name} email subject")
    blocks = [b.to_dict() for b in approval_blocks(facts)]
    tally.check(inert_mrkdwn(mrkdwn_texts(blocks)), f"{name} Slack message blocks")
    decided = [b.to_dict() for b in approval_blocks(facts, outcome="approved", decided_by=BOSS)]
    tally.check(inert_mrkdwn(mrkdwn_texts(decided)), f"{name} Slack message after the decision")
    tally.check(not live_markup(fallback_text(facts)), f"{name} Slack notification text")
    listing = handle_command(db, {"user_id": BOSS_SLACK})
    tally.check(inert_mrkdwn(mrkdwn_texts(listing["blocks"])), f"{name} Slack /approvals list")
    markdown, _, _ = details(db, BOSS, approval.id)
    tally.check(inert_html(markdown, payload), f"{name} Gradio approver page")

    token = make_link_token(approval.id, BOSS, "approve")
    page = client.get("/email/confirm", params={"token": token})
    tally.check(page.status_code == 200 and inert_html(page.text, payload), f"{name} confirmation page")
    result = client.post("/email/confirm", data=answer_form(token))
    tally.check(result.status_code == 200 and not live_markup(result.text), f"{name} result page")
    # A Slack click on the now decided request: the reply names it, escaped.
    reply = handle_interaction(db, click(approval.id))
    tally.check(not reply.ok and not live_markup(reply.text), f"{name} Slack reply")


def unescape_markdown(text: str) -> str:
    """Markdown's backslash escapes of ASCII punctuation (and the invisible word joiners
    that keep links text) taken out: the text a reader sees."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text).replace("\u2060", "")


def markdown_carrying(at: AppTest, marker: str) -> list[Any]:
    return [e for e in at.markdown if marker in str(e.value)]


def test_agent_markup_is_inert_in_the_dashboard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    tally = AttackTally("HTML, script, Slack markup in agent titles and descriptions")
    with _app_over(monkeypatch, sqlite_url):
        db = Database(sqlite_url)
        add_user(db, BOSS, role="approver", password=PASSWORD)
        waiting = [
            waiting_workflow(db, {"title": f"Pay {p}", "description": f"Note: {p}"})[1] for p in PAYLOADS[:4]
        ]
        at = new_app()
        sign_in(at, BOSS, PASSWORD)
        no_exception(at)
        for approval, payload in zip(waiting, PAYLOADS, strict=False):
            open_page(at, "approval", approval=approval.id)
            no_exception(at)
            folded = " ".join(payload.split())  # a title is one line
            shown = [e for e in at.title if folded in unescape_markdown(str(e.value))]
            described = [e for e in at.text if payload in str(e.value)]
            carrying = markdown_carrying(at, payload)
            # The title is a heading with the payload's Markdown escaped, the description
            # plain text (st.text); no markdown element allows HTML.
            tally.check(
                bool(shown) and bool(described) and not any(e.proto.allow_html for e in carrying),
                f"approval page: {payload}",
            )
        open_page(at, "inbox")
        no_exception(at)
        for payload in PAYLOADS[:4]:
            # The title is the link's label, its Markdown escaped (components.text.md).
            labels = [
                e
                for e in at.get("page_link")
                if " ".join(payload.split()) in unescape_markdown(str(e.proto.label))
            ]
            carrying = markdown_carrying(at, payload)
            tally.check(bool(labels) and not any(e.proto.allow_html for e in carrying), f"inbox: {payload}")
        db.dispose()
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures
