"""Agent-written text is text everywhere a person reads it: Markdown an agent writes
(``[Approve here](https://evil.example/phish) ![m](http://attacker.example/b.png)``)
makes no link and no image, on any page.

The phishing text goes into every field an agent (or whoever wrote its
input) controls: the workflow's name, description and step names, the
request's title, description and context (keys and values), a checkpoint's
name, a failed workflow's name (and so its alert), a chat session's title
and messages, a guarded call's tool and arguments. Then every surface that
shows them is read:

* the dashboard in AppTest (Inbox, Approval, Workflow with its checkpoints,
  Monitor's alerts, Sessions): every piece of Markdown an element carries
  (titles, headings, Markdown, captions, notices, page-link labels, button
  and expander labels) is rendered by a CommonMark renderer, and neither its
  links, images nor GFM's automatic links may point at the attacker;
* the Gradio page's HTML, the Slack message blocks, replies and
  ``/approvals`` list (mrkdwn verbatim, no ``<...>``), the approval email
  (its anchors are ours only) and the email confirmation page;
* a hypothesis property: random Markdown and HTML in every agent-written
  field, through each renderer, never yields a link or image to the
  attacker's host.

The real browser's view of the same pages is in test_security_browser.py.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from components.text import md, md_lines
from core.approvals.links import make_link_token
from core.approvals.presentation import request_view
from core.channels.base import ApprovalFacts
from core.channels.email import render_approval_email
from core.channels.notifications import approval_facts
from core.channels.slack import approval_blocks, fallback_text, inert
from core.store.db import Database
from core.store.tables import ApprovalRequest, utcnow
from gateway.app import create_app
from gateway.approver_answers import details
from gateway.approver_view import view_html
from gateway.slack import SlackReply, handle_command, handle_interaction
from tests.helpers.browser import answer_form
from tests.integration.dashboard.conftest import _app_over, new_app, no_exception, open_page
from tests.integration.dashboard.conftest import sign_in as dashboard_sign_in
from tests.integration.gateway.conftest import BOSS
from tests.integration.gateway.test_slack import BOSS_SLACK, click
from tests.reliability.report import AttackTally, record_attacks
from tests.reliability.security_setup import ADMIN, PASSWORD, PHISHING, phishing_scene

EVIL_HOSTS = ("evil.example", "attacker.example")
# What a reader must still see of the phishing text: it is shown, as text.
SHOWN = "Approve here"

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
# GFM's automatic links in rendered text: scheme://, www. where GFM looks for it (at the
# start, after white space or one of *_~([]), an email address.
_AUTOLINK = re.compile(
    r"(?:https?|ftp)://\S+|(?:^|(?<=[\s*_~(\[\]]))www\.\S+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    re.I | re.M,
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "img", "image", "iframe", "link", "script", "svg"):
            self.targets.append(f"<{tag}> " + " ".join(f"{k}={v}" for k, v in attrs))


def html_targets(markup: str) -> list[str]:
    """Every element of ``markup`` that links, embeds or runs something, described."""
    parser = _Tags()
    parser.feed(markup)
    return parser.targets


def markdown_targets(markdown: str) -> list[str]:
    """What a Markdown renderer would make of ``markdown`` that links or embeds: its
    ``<a>``/``<img>`` elements and GFM's automatic links in its text."""
    rendered = _MARKDOWN.render(markdown)
    text = html.unescape(re.sub(r"<[^>]+>", " ", rendered))
    return html_targets(rendered) + [f"autolink {m}" for m in _AUTOLINK.findall(text)]


def to_attacker(targets: list[str]) -> list[str]:
    return [t for t in targets if any(host in t.lower() for host in EVIL_HOSTS)]


def visible(markdown: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


# -- the dashboard (AppTest) ----------------------------------------------------------


def page_markdown(at: AppTest) -> list[str]:
    """Every string on the page Streamlit renders as Markdown."""
    found: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
    ):
        found += [str(e.value) for e in getattr(at, kind)]
    found += [str(e.proto.label) for e in at.get("page_link")]
    found += [str(b.label) for b in at.button]
    found += [str(e.label) for e in at.expander]
    return found


def check_page(tally: AttackTally, at: AppTest, what: str) -> None:
    no_exception(at)
    texts = page_markdown(at)
    bad = [t for text in texts for t in to_attacker(markdown_targets(text))]
    shown = any(SHOWN in visible(text) for text in texts) or any(SHOWN in str(e.value) for e in at.text)
    tally.check(not bad and shown, f"{what}: {bad or 'phishing text not shown'}")


def test_agent_markdown_makes_no_link_or_image_in_the_dashboard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    tally = AttackTally("Agent Markdown (links, images) in every field: dashboard pages")
    for name in ("COUNTERSIGN_MODEL_PROVIDER", "COUNTERSIGN_MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    with _app_over(monkeypatch, sqlite_url):
        db = Database(sqlite_url)
        approval, workflow_id, chat_id = phishing_scene(db)
        boss = dashboard_sign_in(new_app(), BOSS, PASSWORD)
        check_page(tally, open_page(boss, "inbox"), "inbox")
        check_page(tally, open_page(boss, "approval", approval=approval.id), "approval page")
        check_page(tally, open_page(boss, "workflow", workflow=workflow_id), "workflow page")
        check_page(tally, open_page(boss, "sessions", session=chat_id), "sessions page")
        admin = dashboard_sign_in(new_app(), ADMIN, PASSWORD)
        check_page(tally, open_page(admin, "monitor"), "monitor alerts")
        check_page(
            tally, open_page(admin, "workflow", workflow=workflow_id), "workflow page (checkpoints, as admin)"
        )
        db.dispose()
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures


# -- Gradio, Slack, email -------------------------------------------------------------


def mrkdwn_objects(blocks: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(blocks, dict):
        if blocks.get("type") == "mrkdwn":
            found.append(blocks)
        for value in blocks.values():
            found += mrkdwn_objects(value)
    elif isinstance(blocks, list):
        for item in blocks:
            found += mrkdwn_objects(item)
    return found


def slack_inert(blocks: Any) -> bool:
    """Slack links <url|text> and, unless verbatim, bare URLs: neither from the agent."""
    objects = mrkdwn_objects(blocks)
    carrying = [o for o in objects if any(h in str(o["text"]) for h in EVIL_HOSTS)]
    return all(o.get("verbatim") is True for o in carrying) and not any(
        "<" in str(o["text"]).replace("<http://localhost:8501/approval?", "") for o in carrying
    )


def email_inert(markup: str) -> bool:
    return not to_attacker(html_targets(markup)) and "<img" not in markup.lower()


@pytest.fixture
def channels_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({BOSS: BOSS_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "reliability-link-secret-0123456789")
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")


def test_agent_markdown_makes_no_link_or_image_in_gradio_slack_and_email(
    request: pytest.FixtureRequest, db: Database, channels_env: None
) -> None:
    tally = AttackTally("Agent Markdown (links, images) in every field: Gradio, Slack, email")
    approval, _, _ = phishing_scene(db)
    with db.read() as session:
        facts = approval_facts(session, approval.id)
    assert facts is not None
    markup, _, _ = details(db, BOSS, approval.id)
    tally.check(not html_targets(markup) and SHOWN in markup, "Gradio request view")
    blocks = [b.to_dict() for b in approval_blocks(facts)]
    tally.check(slack_inert(blocks), "Slack message")
    decided = [b.to_dict() for b in approval_blocks(facts, outcome="approved", decided_by=BOSS)]
    tally.check(slack_inert(decided), "Slack message after the decision")
    tally.check(
        not any(h in fallback_text(facts) and "<" in fallback_text(facts) for h in EVIL_HOSTS),
        "Slack notification text",
    )
    tally.check(slack_inert(handle_command(db, {"user_id": BOSS_SLACK})["blocks"]), "Slack /approvals list")
    email = render_approval_email(facts, BOSS, "approval.requested")
    tally.check(email_inert(email["html"]) and SHOWN in email["html"], "approval email")
    with TestClient(create_app(db, approver_ui=False)) as client:
        token = make_link_token(approval.id, BOSS, "approve")
        page = client.get("/email/confirm", params={"token": token})
        tally.check(
            page.status_code == 200 and email_inert(page.text) and SHOWN in page.text,
            "email confirmation page",
        )
        done = client.post("/email/confirm", data=answer_form(token))
        tally.check(done.status_code == 200 and email_inert(done.text), "email result page")
    reply = handle_interaction(db, click(approval.id))  # already decided: the reply names it
    tally.check(slack_inert(reply.message()["blocks"]), "Slack reply")
    record_attacks(request, tally)
    assert tally.refused == tally.attempts, tally.failures


# -- the property ---------------------------------------------------------------------

FRAGMENTS = [
    "[",
    "]",
    "(",
    ")",
    "![",
    "](",
    "<",
    ">",
    "<a href=",
    "<img src=",
    '"',
    "'",
    "`",
    "*",
    "_",
    "~",
    "#",
    "- ",
    "1. ",
    ">",
    "|",
    "\\",
    "&",
    "&lt;",
    "$",
    ":",
    "@",
    "\n",
    "\n\n",
    "    ",
    "https://evil.example/x",
    "http://attacker.example/i.png",
    "www.evil.example",
    "mallory@evil.example",
    "<https://evil.example>",
    "[a]: https://evil.example",
    "javascript:",
    " ",
    "x",
    "Approve",
]
agent_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), min_size=1, max_size=14).map("".join)


def transient_request(text: str) -> tuple[ApprovalRequest, ApprovalFacts]:
    """A budget request guarding a call, every agent-written field ``text`` (no database)."""
    call = {"tool": text or "tool", "arguments": {text or "arg": text, "amount": 5}, "digest": "d" * 64}
    approval = ApprovalRequest(
        id="ap-1",
        workflow_id="wf-1",
        step_name=text,
        title=text,
        description=text,
        approval_type="budget",
        status="pending",
        requested_by="starter@example.com",
        approvers=[BOSS],
        threshold=1,
        config={"type": "budget", "requested_from": [BOSS]},
        context_data={text: text, "amount": 5},
        response_schema={},
        proposed_action={"context": {text: text}},
        proposed_call=call,
        released_call=None,
        level=0,
        expires_at=utcnow() + timedelta(hours=1),
        decided_at=None,
        decided_by=None,
        decision_data=None,
    )
    view = request_view(approval, [])
    facts = ApprovalFacts(
        id="ap-1",
        title=text,
        description=text,
        approval_type="budget",
        status="pending",
        approvers=[BOSS],
        requested_by="starter@example.com",
        workflow_id="wf-1",
        workflow_name=text,
        step_name=text,
        level=0,
        expires_at=None,
        decided_by=None,
        decided_at=None,
        proposed_action={"context": {text: text}},
        context_data={text: text},
        view=view,
    )
    return approval, facts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=agent_text)
@example(text=PHISHING)
@example(text="see https://evil.example/x, www.evil.example and <mallory@evil.example>\n1. [a]: x")
def test_random_markdown_and_html_in_agent_fields_never_link_or_embed(text: str) -> None:
    # The dashboard: whatever is put through the helper, inline or by lines.
    for shown in (md(text), md_lines(text), f"**{md(text)}** · step {md(text)}"):
        assert not to_attacker(markdown_targets(shown)), shown
    # The text itself is shown, unchanged but for runs of white space.
    assert visible(md(text)) == " ".join(text.replace("\u2060", "").split())
    _, facts = transient_request(text)
    assert facts.view is not None
    # Gradio: HTML blocks, every value escaped.
    assert not html_targets(view_html(facts.view)), view_html(facts.view)
    # Slack: mrkdwn carrying agent text is verbatim, without <...>; replies alike.
    assert slack_inert([b.to_dict() for b in approval_blocks(facts)])
    reply = SlackReply(f"You approved “{inert(text)}”.", True).message()
    assert slack_inert(reply["blocks"]) and "<" not in reply["blocks"][0]["text"]["text"]
    # Email: autoescaped; the only anchors are ours.
    email = render_approval_email(facts, BOSS, "approval.requested")
    assert email_inert(email["html"])
    assert "\n" not in email["subject"] and "\r" not in email["subject"]
