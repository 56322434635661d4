"""Email through a real SMTP server on loopback (aiosmtpd) and the real SendGrid client.

The received message is parsed; its links carry tokens that the link module
accepts for exactly the right approval, approver and decision, refuses when
tampered or expired, and spends once.
"""

from __future__ import annotations

import json
import re
import time
from email.message import EmailMessage
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.approvals.links import read_link_token, respond_with_link
from core.base.errors import ApprovalClosed, LinkExpired, LinkInvalid, LinkUsed
from core.store.db import Database
from core.store.tables import ApprovalResponse, Notification, UsedToken
from tests.integration.channels.conftest import Mailbox, Recorder, ask, dispatcher

XSS_TITLE = "<script>alert('x')</script> Pay & ship"


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "both a text and an HTML part"
    return text.get_content(), html.get_content()


def confirm_tokens(text: str) -> dict[str, str]:
    """decision label -> token, from the plain-text body's links."""
    found = {}
    for label, url in re.findall(r"^(Approve|Reject): (\S+)", text, flags=re.M):
        parsed = urlparse(url)
        assert (parsed.scheme, parsed.netloc, parsed.path) == ("http", "gateway.test:8000", "/email/confirm")
        found[label] = parse_qs(parsed.query)["token"][0]
    return found


def test_binary_request_email_has_both_bodies_escaped_title_and_working_links(
    db: Database, smtp: Mailbox
) -> None:
    smtp.start()
    approval_id = ask(
        db,
        XSS_TITLE,
        description="Agent says: <b>urgent</b> & important",
        context_data={"amount": 1200, "vendor": "<ACME>"},
        proposed_action={"tool": "pay", "arguments": {"invoice": 42}},
    )
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1

    [message] = smtp.received()
    assert smtp.envelopes[0][1] == ["bob@example.com"]
    with db.read() as session:
        row = session.scalars(select(Notification).where(Notification.approval_id == approval_id)).one()
    assert (row.status, row.attempts) == ("sent", 1)
    assert str(message["Message-ID"]).strip().startswith(f"<{row.id}.")
    assert "\n" not in message["Subject"] and "Pay & ship" in message["Subject"]
    text, html = parts(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>urgent</b>" not in html and "&lt;b&gt;urgent&lt;/b&gt;" in html
    assert "&lt;ACME&gt;" in html and "pay(invoice=42)" in html
    assert XSS_TITLE in text  # the plain-text part is shown as text, never rendered

    tokens = confirm_tokens(text)
    assert set(tokens) == {"Approve", "Reject"}
    assert tokens["Approve"] in html and tokens["Reject"] in html
    approve = read_link_token(tokens["Approve"])
    reject = read_link_token(tokens["Reject"])
    bob = "bob@example.com"
    assert (approve.approval_id, approve.approver, approve.decision) == (approval_id, bob, "approve")
    assert (reject.approval_id, reject.approver, reject.decision) == (approval_id, bob, "reject")
    assert f"http://dash.test:8501/approval?approval={approval_id}" in text

    # Tampered and expired links are refused.
    head, _, sig = tokens["Approve"].rpartition(".")
    with pytest.raises(LinkInvalid):
        read_link_token(head + "." + ("A" if sig[0] != "A" else "B") + sig[1:])
    forged_payload = tokens["Approve"].replace(tokens["Approve"].split(".")[0], "eyJhIjoieCJ9", 1)
    with pytest.raises(LinkInvalid):
        read_link_token(forged_payload)
    with pytest.raises(LinkExpired):
        read_link_token(tokens["Approve"], now=time.time() + 8 * 86400)

    # The link decides once; the same link then refuses a second use.
    decided = respond_with_link(db, tokens["Approve"])
    assert (decided.status, decided.decided_by) == ("approved", "bob@example.com")
    with db.read() as session:
        vote = session.scalars(
            select(ApprovalResponse).where(ApprovalResponse.approval_id == approval_id)
        ).one()
        assert (vote.channel, vote.decision) == ("email", "approve")
    with pytest.raises(LinkUsed):
        respond_with_link(db, tokens["Approve"])
    # The other link of the same email fails on the closed request and stays unspent.
    with pytest.raises(ApprovalClosed):
        respond_with_link(db, tokens["Reject"])
    with db.read() as session:
        assert session.get(UsedToken, reject.token_id) is None
        assert session.get(UsedToken, approve.token_id) is not None


def test_a_refused_vote_leaves_the_link_unspent(db: Database, smtp: Mailbox) -> None:
    """A link for someone who may not answer is refused and nothing is written."""
    from core.approvals.links import make_link_token
    from core.base.errors import NotAuthorized

    approval_id = ask(db, to="bob@example.com", channels=[])
    stranger = make_link_token(approval_id, "mallory@example.com", "approve")
    with pytest.raises(NotAuthorized):
        respond_with_link(db, stranger)
    with db.read() as session:
        assert session.scalars(select(UsedToken)).all() == []
        assert session.scalars(select(ApprovalResponse)).all() == []
    assert ApprovalEngine(db).get(approval_id).status == "pending"


def test_form_request_email_links_to_the_dashboard_only(db: Database, smtp: Mailbox) -> None:
    smtp.start()
    approval_id = ask(
        db,
        "Choose a vendor",
        approval_type="form",
        config={"form_fields": [{"name": "vendor", "type": "string", "required": True}]},
    )
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [message] = smtp.received()
    text, html = parts(message)
    assert "/email/confirm" not in text and "/email/confirm" not in html
    assert f"http://dash.test:8501/approval?approval={approval_id}" in text
    assert f"http://dash.test:8501/approval?approval={approval_id}" in html


def test_group_recipient_gets_one_message_per_member_with_own_links(db: Database, smtp: Mailbox) -> None:
    from core.store.tables import User

    with db.session() as session:
        session.add_all(
            [
                User(email="ann@example.com", groups=["finance"]),
                User(email="ben@example.com", groups=["finance", "ops"]),
                User(email="cid@example.com", groups=["ops"]),
            ]
        )
    smtp.start()
    approval_id = ask(db, to="finance")
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    received = smtp.received()
    assert sorted(m["To"] for m in received) == ["ann@example.com", "ben@example.com"]
    for message in received:
        token = confirm_tokens(parts(message)[0])["Approve"]
        claims = read_link_token(token)
        assert (claims.approval_id, claims.approver) == (approval_id, message["To"])
    assert len({m["Message-ID"] for m in received}) == 2


def test_sendgrid_client_posts_to_its_host_with_click_tracking_off(
    db: Database, sendgrid_api: Recorder
) -> None:
    approval_id = ask(db, XSS_TITLE)
    assert dispatcher(db).dispatch_until_idle(max_seconds=20) == 1
    [call] = sendgrid_api.recorded("/v3/mail/send")
    assert call["method"] == "POST"
    assert call["headers"]["authorization"] == "Bearer SG.test-key"
    body = json.loads(call["body"])
    assert body["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    assert body["personalizations"][0]["to"] == [{"email": "bob@example.com"}]
    contents = {c["type"]: c["value"] for c in body["content"]}
    assert set(contents) == {"text/plain", "text/html"}
    assert "<script>" not in contents["text/html"]
    with db.read() as session:
        row = session.scalars(select(Notification).where(Notification.approval_id == approval_id)).one()
    assert body["headers"]["Message-ID"].startswith(f"<{row.id}.")
    assert row.status == "sent" and row.external_ref["provider"] == "sendgrid"
    token = confirm_tokens(contents["text/plain"])["Approve"]
    assert read_link_token(token).approval_id == approval_id


def test_sendgrid_rejection_is_permanent_and_kills_the_row(
    db: Database, channel_env: pytest.MonkeyPatch
) -> None:
    server = Recorder(lambda method, path, headers, body: (400, {"errors": [{"message": "bad from"}]}))
    try:
        channel_env.setenv("SENDGRID_API_KEY", "SG.test-key")
        channel_env.setenv("SENDGRID_API_HOST", server.url)
        approval_id = ask(db)
        dispatcher(db).dispatch_until_idle(max_seconds=20)
    finally:
        server.close()
    with db.read() as session:
        row = session.scalars(select(Notification).where(Notification.approval_id == approval_id)).one()
    assert (row.status, row.attempts) == ("dead", 1)
    assert "SendGrid refused the message (400)" in (row.last_error or "")


def test_a_disabled_account_is_sent_nothing(db: Database, smtp: Mailbox) -> None:
    """Disabled (core.identity.account_state): no row is queued for it, its group's mail
    goes to the others, and a row queued before it was disabled dies with the reason."""
    from core.identity.account_state import disable_user
    from core.store.tables import User

    with db.session() as session:
        session.add_all(
            [
                User(email="root@example.com", role="admin"),
                User(email="ann@example.com", groups=["finance"]),
                User(email="ben@example.com", groups=["finance"]),
                User(email="cid@example.com"),
            ]
        )
    queued_before = ask(db, "Queued before", to="cid@example.com")
    disable_user(db, "ben@example.com", actor="root@example.com")
    disable_user(db, "cid@example.com", actor="root@example.com")
    direct = ask(db, "Direct", to=["ben@example.com", "ann@example.com"])
    group = ask(db, "To the group", to="finance")
    with db.read() as session:
        recipients = dict(
            session.execute(
                select(Notification.approval_id, Notification.recipient).where(
                    Notification.approval_id == direct
                )
            ).all()
        )
    assert list(recipients.values()) == ["ann@example.com"]

    smtp.start()
    dispatcher(db).dispatch_until_idle(max_seconds=20)
    received = sorted((m["Subject"], m["To"]) for m in smtp.received())
    assert [to for _, to in received] == ["ann@example.com", "ann@example.com"]
    assert not any("Queued before" in subject for subject, _ in received)
    with db.read() as session:
        [row] = session.scalars(select(Notification).where(Notification.approval_id == queued_before)).all()
        assert row.status == "dead"
        assert row.last_error == "cid@example.com's account is disabled; nothing is sent to it."
        statuses = set(
            session.scalars(
                select(Notification.status).where(Notification.approval_id.in_([direct, group]))
            ).all()
        )
    assert statuses == {"sent"}
