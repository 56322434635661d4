"""Loopback stand-ins for the SaaS the channels talk to, and channel settings.

- ``smtp``: a real SMTP server (aiosmtpd) on 127.0.0.1, startable later on a
  port chosen now (to play a mail server that is down for a while);
- ``slack_api``: an HTTP server the real ``slack_sdk.WebClient`` posts to; it
  records calls and checks Block Kit limits;
- ``sendgrid_api``: an HTTP server the real SendGrid client posts to;
- ``webhook_receiver``: verifies every delivery with ``standardwebhooks``
  and answers with a scripted series of status codes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from core.approvals.engine import ApprovalEngine
from core.base.config import get_settings
from core.channels.dispatcher import DeliveryPolicy, Dispatcher
from core.store.db import Database

LINK_SECRET = "test-link-secret-0123456789abcdef"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST = DeliveryPolicy(
    max_attempts=6,
    backoff_initial=0.05,
    backoff_max=0.2,
    breaker_threshold=3,
    breaker_cooldown=0.3,
    poll_seconds=0.05,
    claim_seconds=30,
    defer_seconds=0.05,
)

# Block Kit limits (api.slack.com/reference/block-kit).
MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
VALUE_MAX = 2000
URL_MAX = 3000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll until true; fail after ``timeout`` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or condition}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def channel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean channel environment: only what each test configures."""
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_API_URL",
        "SLACK_USER_MAP",
        "SENDGRID_API_KEY",
        "SENDGRID_API_HOST",
        "COUNTERSIGN_WEBHOOK_URL",
        "COUNTERSIGN_WEBHOOK_SECRET",
        "COUNTERSIGN_EMAIL_PROVIDER",
        "COUNTERSIGN_ENV",
    ):
        monkeypatch.delenv(name, raising=False)
    for key in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "SECURITY", "TIMEOUT"):
        monkeypatch.delenv(f"COUNTERSIGN_SMTP_{key}", raising=False)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_DASHBOARD_URL", "http://dash.test:8501")
    monkeypatch.setenv("COUNTERSIGN_GATEWAY_URL", "http://gateway.test:8000")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def dispatcher(db: Database, **overrides: Any) -> Dispatcher:
    from dataclasses import replace

    return Dispatcher(db, policy=replace(FAST, **overrides))


def ask(
    db: Database,
    title: str = "Pay invoice 42",
    *,
    to: str | list[str] = "bob@example.com",
    channels: list[str] | None = None,
    approval_type: str = "binary",
    **kwargs: Any,
) -> str:
    config: dict[str, Any] = {"channels": channels if channels is not None else ["email"]}
    config.update(kwargs.pop("config", {}))
    return (
        ApprovalEngine(db)
        .request_approval(
            None,
            title,
            kwargs.pop("description", "Vendor ACME, due Friday."),
            approval_type,
            to,
            requested_by="agent@example.com",
            config=config,
            **kwargs,
        )
        .id
    )


# -- SMTP ------------------------------------------------------------------------


class Mailbox:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def configure(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COUNTERSIGN_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("COUNTERSIGN_SMTP_PORT", str(self.port))
        monkeypatch.setenv("COUNTERSIGN_SMTP_SECURITY", "none")
        monkeypatch.setenv("COUNTERSIGN_SMTP_FROM", "Countersign <approvals@countersign.test>")


@pytest.fixture
def smtp(channel_env: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """Configured but NOT started: call ``smtp.start()`` (a closed port until then)."""
    box = Mailbox()
    box.configure(channel_env)
    yield box
    box.stop()


# -- HTTP stand-ins ----------------------------------------------------------------


class Recorder:
    """A loopback HTTP server; ``respond(method, path, headers, body)`` answers each call."""

    def __init__(self, respond: Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = respond(self.command, self.path, headers, body)
                with recorder.lock:
                    recorder.calls.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": headers,
                            "body": body,
                            "status": status,
                        }
                    )
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle  # noqa: N815
            do_POST = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def recorded(self, path_part: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if path_part in c["path"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _text_len(obj: dict[str, Any] | None) -> int:
    return len((obj or {}).get("text") or "")


def block_kit_problems(blocks: list[dict[str, Any]]) -> list[str]:
    """Where a message breaks Block Kit's limits."""
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks")
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and _text_len(block.get("text")) > HEADER_MAX:
            problems.append("header too long")
        if kind == "section":
            if _text_len(block.get("text")) > SECTION_TEXT_MAX:
                problems.append("section text too long")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"{len(fields)} fields")
            problems += ["field too long" for f in fields if _text_len(f) > FIELD_MAX]
        for element in block.get("elements") or []:
            if element.get("type") != "button":
                continue
            if _text_len(element.get("text")) > BUTTON_TEXT_MAX:
                problems.append("button text too long")
            if len(element.get("action_id") or "") > ACTION_ID_MAX:
                problems.append("action_id too long")
            if len(element.get("value") or "") > VALUE_MAX:
                problems.append("value too long")
            if len(element.get("url") or "") > URL_MAX:
                problems.append("url too long")
    return problems


class SlackAPI(Recorder):
    """Answers chat.postMessage, chat.update and users.lookupByEmail like Slack."""

    def __init__(self) -> None:
        self.users = {"carol@example.com": "U0CAROL"}
        self.problems: list[str] = []
        self.fail_next: list[str] = []
        self.posted: list[dict[str, Any]] = []
        self._ts = 1000
        super().__init__(self._respond)

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if headers.get("authorization") != "Bearer xoxb-test-token":
            return 200, {"ok": False, "error": "invalid_auth"}
        if self.fail_next:
            return 200, {"ok": False, "error": self.fail_next.pop(0)}
        api = urlparse(path).path.rsplit("/", 1)[-1]
        if api == "users.lookupByEmail":
            email = (parse_qs(urlparse(path).query).get("email") or [""])[0]
            if not email and body:
                email = (parse_qs(body.decode()).get("email") or [""])[0]
            user = self.users.get(email)
            return 200, (
                {"ok": True, "user": {"id": user}} if user else {"ok": False, "error": "users_not_found"}
            )
        payload = json.loads(body or b"{}")
        blocks = payload.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        self.problems += block_kit_problems(blocks)
        if api == "chat.postMessage":
            self._ts += 1
            self.posted.append(payload)
            return 200, {"ok": True, "channel": f"D-{payload['channel']}", "ts": f"{self._ts}.000100"}
        if api == "chat.update":
            return 200, {"ok": True, "channel": payload["channel"], "ts": payload["ts"]}
        return 200, {"ok": False, "error": "unknown_method"}

    def payloads(self, api: str) -> list[dict[str, Any]]:
        return [json.loads(c["body"]) for c in self.recorded(api)]


@pytest.fixture
def slack_api(channel_env: pytest.MonkeyPatch) -> Iterator[SlackAPI]:
    server = SlackAPI()
    channel_env.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    channel_env.setenv("SLACK_API_URL", server.url + "/api/")
    channel_env.setenv("SLACK_USER_MAP", json.dumps({"bob@example.com": "U0BOB"}))
    yield server
    server.close()


@pytest.fixture
def sendgrid_api(channel_env: pytest.MonkeyPatch) -> Iterator[Recorder]:
    server = Recorder(lambda method, path, headers, body: (202, b""))
    channel_env.setenv("SENDGRID_API_KEY", "SG.test-key")
    channel_env.setenv("SENDGRID_API_HOST", server.url)
    channel_env.setenv("COUNTERSIGN_SMTP_FROM", "approvals@countersign.test")
    yield server
    server.close()


class WebhookReceiver(Recorder):
    """Verifies each delivery's Standard Webhooks signature; answers from a script."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.verified: list[dict[str, Any]] = []
        self.refused = 0
        super().__init__(self._respond)

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        try:
            payload = Webhook(WEBHOOK_SECRET).verify(body, headers)
        except WebhookVerificationError:
            self.refused += 1
            return 401, {"error": "bad signature"}
        status = self.script.pop(0) if self.script else 204
        with self.lock:
            self.verified.append({"id": headers["webhook-id"], "payload": payload, "status": status})
        return status, b""

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [v for v in self.verified if 200 <= v["status"] < 300]


@pytest.fixture
def webhook_receiver(channel_env: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    channel_env.setenv("COUNTERSIGN_WEBHOOK_URL", server.url + "/hooks")
    channel_env.setenv("COUNTERSIGN_WEBHOOK_SECRET", WEBHOOK_SECRET)
    yield server
    server.close()
