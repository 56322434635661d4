"""A full run's logs: JSON lines bound to the workflow, never a secret or a link token.

One workflow (a tool step, an approval asked by email and Slack, a tool step
after it) runs through the real runner, the real dispatcher sending to a real
SMTP server and a Slack stand-in on loopback, and is approved by spending the
signed link from the email. Every secret the project reads is set to a
distinctive value; the whole log file is then searched for each of them and
for every link token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from core.approvals.engine import ApprovalEngine
from core.approvals.links import respond_with_link
from core.base.config import get_settings
from core.base.logging import SECRET_ENV_VARS, configure_logging
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from tests.integration.channels.conftest import FAST, Mailbox, SlackAPI


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions)."""
    add_user(db, "agent@example.com", role="service")


APPROVER = "bob@example.com"
SECRETS = {name: f"S3CRET-{name.lower().replace('_', '-')}-9f3c1e7d" for name in SECRET_ENV_VARS}


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "countersign.log"
    with path.open("w", encoding="utf-8") as stream:
        configure_logging(fmt="json", level="DEBUG", stream=stream, force=True)
        yield path
    configure_logging(force=True)  # back to stderr for later tests


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, SlackAPI]]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    monkeypatch.setenv("COUNTERSIGN_DASHBOARD_URL", "http://dash.test:8501")
    monkeypatch.setenv("COUNTERSIGN_GATEWAY_URL", "http://gateway.test:8000")
    monkeypatch.delenv("COUNTERSIGN_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("SENDGRID_API_HOST", raising=False)
    monkeypatch.delenv("COUNTERSIGN_EMAIL_PROVIDER", raising=False)
    monkeypatch.setenv("COUNTERSIGN_EMAIL_PROVIDER", "smtp")
    monkeypatch.setenv("COUNTERSIGN_SMTP_USER", "")
    mailbox = Mailbox()
    mailbox.configure(monkeypatch)
    mailbox.start()
    slack = SlackStandIn()
    # The SMTP stand-in (aiosmtpd) logs whole messages at DEBUG; it plays a
    # remote server, so its lines are not Countersign's.
    monkeypatch.setattr(logging.getLogger("mail.log"), "level", logging.WARNING)
    monkeypatch.setenv("SLACK_API_URL", slack.url + "/api/")
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({APPROVER: "U0BOB"}))
    get_settings.cache_clear()
    yield mailbox, slack
    mailbox.stop()
    slack.close()
    get_settings.cache_clear()


class SlackStandIn(SlackAPI):
    """The channels tests' Slack stand-in, accepting this test's distinctive bot token."""

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("authorization") == f"Bearer {SECRETS['SLACK_BOT_TOKEN']}":
            headers = {**headers, "authorization": "Bearer xoxb-test-token"}
        else:
            headers = {**headers, "authorization": "refused"}
        return super()._respond(method, path, headers, body)


def _registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register("do")
    def do(label: str, idempotency_key: str) -> dict[str, Any]:
        # A tool that logs carelessly: the redaction must still hold.
        structlog.get_logger("tests.tool").info("tool ran", label=label, api_key=SECRETS["OPENAI_API_KEY"])
        return {"done": label}

    return reg


def _lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_full_run_logs_no_secret_and_binds_ids(
    db: Database, channels: tuple[Mailbox, SlackAPI], log_file: Path
) -> None:
    mailbox, slack = channels
    from core.channels.dispatcher import Dispatcher

    registry = _registry()
    workflow = ops.create_workflow(
        db,
        {
            "name": "pay invoice",
            "steps": [
                {"name": "prepare", "type": "tool", "tool": "do", "args": {"label": "prepare"}},
                {
                    "name": "sign_off",
                    "type": "approval",
                    "approval_config": {"requested_from": APPROVER, "channels": ["email", "slack"]},
                },
                {"name": "pay", "type": "tool", "tool": "do", "args": {"label": "pay"}},
            ],
        },
        created_by="agent@example.com",
    )
    runner = build_runner(db, registry=registry, lease_seconds=10, dispatch_notifications=False)
    runner.run_until_idle(max_seconds=30)
    assert ops.get_workflow(db, workflow.id).status == "waiting_approval"
    [approval] = ApprovalEngine(db).list_pending_approvals(workflow_id=workflow.id)

    Dispatcher(db, policy=FAST).dispatch_until_idle(max_seconds=20)
    [message] = mailbox.received()
    body = "\n".join(
        str(part.get_content())
        for part in message.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )
    tokens = set(re.findall(r"token=([A-Za-z0-9_.\-]+)", body))
    assert tokens, "the email carries signed links"
    assert slack.posted, "the request was posted to Slack"

    # Careless lines from our own code and a library: redacted all the same.
    structlog.get_logger("tests").warning(
        "careless",
        link=f"http://gateway.test:8000/email/confirm?token={min(tokens)}",
        detail=f"bot token is {SECRETS['SLACK_BOT_TOKEN']}",
        smtp_password="plain",
        headers={"Authorization": f"Bearer {SECRETS['HF_TOKEN']}"},
    )
    logging.getLogger("sqlalchemy.engine").warning(
        "library says %s and %s", SECRETS["COUNTERSIGN_WEBHOOK_SECRET"], SECRETS["COUNTERSIGN_LINK_SECRETS"]
    )

    assert any(respond_ok(db, token) for token in tokens), "an Approve link"
    runner.run_until_idle(max_seconds=30)
    assert ops.get_workflow(db, workflow.id).status == "completed"
    Dispatcher(db, policy=FAST).dispatch_until_idle(max_seconds=20)
    assert slack.payloads("chat.update") and not slack.problems, "the Slack message was updated"

    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    for name, value in SECRETS.items():
        assert value not in text, f"{name}'s value is in the log"
    for token in tokens:
        assert token not in text, "a link token is in the log"
    assert "***" in text  # the careless lines were redacted, not dropped

    lines = _lines(log_file)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    started = by_event["step started"]
    assert {line["step"] for line in started} == {"prepare", "sign_off", "pay"}
    assert all(line["workflow_id"] == workflow.id and line["actor"] == runner.runner_id for line in started)
    [requested] = by_event["approval requested"]
    assert requested["approval_id"] == approval.id and requested["step"] == "sign_off"
    [decided] = by_event["approval decided"]
    assert (decided["approval_id"], decided["workflow_id"], decided["step"], decided["actor"]) == (
        approval.id,
        workflow.id,
        "sign_off",
        APPROVER,
    )
    [resumed] = by_event["resuming after decision"]
    assert resumed["approval_id"] == approval.id and resumed["workflow_id"] == workflow.id
    sent = by_event["notification sent"]
    assert {line["channel"] for line in sent} >= {"email", "slack"}
    assert all(line["approval_id"] == approval.id and line["workflow_id"] == workflow.id for line in sent)
    [tool_line] = [line for line in by_event["tool ran"] if line["label"] == "pay"]
    assert tool_line["step"] == "pay" and tool_line["api_key"] == "***"
    [careless] = by_event["careless"]
    assert careless["smtp_password"] == "***" and careless["headers"]["Authorization"] == "***"
    assert careless["link"].endswith("token=***")
    [library] = [line for line in lines if line.get("logger") == "sqlalchemy.engine"]
    assert library["event"] == "library says *** and ***" and library["level"] == "warning"
    assert by_event["workflow completed"][0]["workflow_id"] == workflow.id


def respond_ok(db: Database, token: str) -> bool:
    from core.approvals.links import read_link_token

    if read_link_token(token).decision != "approve":
        return False
    respond_with_link(db, token)
    return True
