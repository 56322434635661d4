"""The SmolAgent orchestrator's own Python examples (seed 002), run as its users
run them after switching: each verbatim but for its import line, on SQLite and
PostgreSQL, to the outcome the seed describes.

The examples are read from seed_python_examples.md (checked against the seed
itself wherever shared/seeds/ is at hand). The one other edit is where the seed
names its own database (``postgresql+asyncpg://user:pass@localhost/db``): the
test's database takes its place, through the same async driver (asyncpg, or
aiosqlite on SQLite). Where an example needs a person's answer, a person
answers it through the approval engine from another thread, once they were
notified, as they would from their inbox. Where it needs something the seed
assumed already there (an ``orchestrator``, an ``agent``, a ``workflow_id``), the
test makes it through the same API first.

Nothing leaves the machine: SendGrid, Slack and webhook receivers are loopback
stand-ins (tests/integration/channels/conftest.py), and the seed's
``inference_client`` model is a scripted stand-in at smolagents' class.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import structlog
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.base.config import get_settings
from core.base.errors import ConfigurationError, WorkflowNotFound
from core.engine import workflows as ops
from core.engine.tools import ToolRegistry
from core.orchestrator_async import SmolAgentOrchestrator, WorkflowRecoveryService
from core.runtime import build_runner
from core.store.async_db import sync_url
from core.store.db import Database, normalise_url
from core.store.tables import ApprovalRequest, ChannelConfiguration, WorkflowEvent
from tests.helpers.engine import event_types
from tests.integration.channels.conftest import (
    LINK_SECRET,
    WEBHOOK_SECRET,
    Mailbox,
    Recorder,
    WebhookReceiver,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = Path(__file__).with_name("seed_python_examples.md")
SEED_IMPORT = "from src.agents.orchestrator import SmolAgentOrchestrator"
OUR_IMPORT = "from core.orchestrator_async import SmolAgentOrchestrator"
SEED_DATABASE = "postgresql+asyncpg://user:pass@localhost/db"
# Every secret the seed's examples hand over; none may reach the database.
SEED_SECRETS = (
    "xoxb-your-token",
    "your-secret",
    "your-api-key",
    "xoxb-your-bot-token",
    "your-signing-secret",
    "your-sendgrid-key",
    "your-password",
)
CHANNEL_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "SLACK_USER_MAP",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "COUNTERSIGN_WEBHOOK_URL",
    "COUNTERSIGN_WEBHOOK_SECRET",
    "COUNTERSIGN_EMAIL_PROVIDER",
    "COUNTERSIGN_ENV",
    "COUNTERSIGN_MODEL_PROVIDER",
    "COUNTERSIGN_MODEL_ID",
    "COUNTERSIGN_MODEL_API_BASE",
    *(f"COUNTERSIGN_SMTP_{k}" for k in ("HOST", "PORT", "USER", "PASSWORD", "FROM", "SECURITY", "TIMEOUT")),
)


# -- the examples -------------------------------------------------------------------


def python_blocks(text: str) -> dict[str, str]:
    """The ```python blocks of a markdown text, by the heading each stands under."""
    blocks: dict[str, str] = {}
    heading = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            end = lines.index("```", index + 1)
            blocks[heading] = "\n".join(lines[index + 1 : end])
            index = end
        index += 1
    return blocks


EXAMPLE = python_blocks(EXAMPLES.read_text(encoding="utf-8"))


def switched(source: str) -> str:
    """The example after its one-line switch to Countersign."""
    assert source.count(SEED_IMPORT) <= 1
    return source.replace(SEED_IMPORT, OUR_IMPORT)


def _evaluated(source: str, namespace: dict[str, Any]) -> Any:
    code = compile(switched(source), "<seed example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    return eval(code, namespace)  # noqa: S307 - the seed's own example text


def run_example(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run an example's text as a module would; one with top-level ``await`` (the
    seed's fragments) in an event loop of its own. Returns its namespace."""
    outcome = _evaluated(source, namespace)
    if inspect.iscoroutine(outcome):
        asyncio.run(outcome)
    return namespace


async def await_example(source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """``run_example`` inside a running event loop."""
    outcome = _evaluated(source, namespace)
    if inspect.iscoroutine(outcome):
        await outcome
    return namespace


def seed_file() -> Path | None:
    for base in (ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")):
        found = sorted(base.glob("002_*.txt")) if base.is_dir() else []
        if found:
            return found[0]
    return None


def test_the_examples_are_the_seeds_own() -> None:
    assert list(EXAMPLE) == [
        "Basic Usage",
        "Agent Tools Usage",
        "Slack Integration",
        "Email Integration",
        "Webhook Integration",
        "Structured Logging",
        "Workflow Status API",
        "Automatic Retry",
        "Manual Rollback",
        "E-commerce Order Processing",
        "Deployment Pipeline",
    ]
    seed = seed_file()
    if seed is None:
        pytest.skip("the seed documents (shared/seeds/) are not at hand here")
    assert python_blocks(seed.read_text(encoding="utf-8")) == EXAMPLE
    for other in sorted(seed.parent.glob("00[01]_*.txt")):  # seeds 000 and 001: diagrams only
        assert python_blocks(other.read_text(encoding="utf-8")) == {}


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
def async_url(db_url: str) -> Iterator[str]:
    """The test database's URL through the async driver the seed's users have."""
    url = normalise_url(db_url)
    if url.startswith("sqlite:"):
        yield url.replace("sqlite:", "sqlite+aiosqlite:", 1)
    else:
        yield url.replace("postgresql+psycopg:", "postgresql+asyncpg:", 1)
    from core.store import async_db
    from core.store import db as core_db

    cached = core_db._default.pop(url, None)
    if cached is not None:
        cached.dispose()
    async_db._checked.discard(url)


def slack_answer(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    """Slack's Web API as far as the channel uses it, for any token."""
    api = urlparse(path).path.rsplit("/", 1)[-1]
    if api == "users.lookupByEmail":
        return 200, {"ok": True, "user": {"id": "U0ADMIN"}}
    payload = json.loads(body or b"{}")
    if api == "chat.postMessage":
        return 200, {"ok": True, "channel": "D0ADMIN", "ts": "1000.000100"}
    if api == "chat.update":
        return 200, {"ok": True, "channel": payload.get("channel"), "ts": payload.get("ts")}
    return 200, {"ok": False, "error": "unknown_method"}


@dataclass
class Services:
    sendgrid: Recorder
    slack: Recorder

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        sent = [
            json.loads(c["body"]) | {"_auth": c["headers"].get("authorization")}
            for c in self.sendgrid.recorded("/v3/mail/send")
        ]
        return [
            m for m in sent if any(to["email"] == address for p in m["personalizations"] for to in p["to"])
        ]

    def slack_posts(self) -> list[dict[str, Any]]:
        return [
            json.loads(c["body"]) | {"_auth": c["headers"].get("authorization")}
            for c in self.slack.recorded("chat.postMessage")
        ]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """A clean channel environment (configure_* calls write os.environ: restored after),
    with SendGrid and Slack on loopback and ``auto`` default channels."""
    saved = dict(os.environ)
    for name in CHANNEL_ENV:
        os.environ.pop(name, None)
    sendgrid = Recorder(lambda method, path, headers, body: (202, b""))
    slack = Recorder(slack_answer)
    os.environ.update(
        {
            "SENDGRID_API_HOST": sendgrid.url,
            "SLACK_API_URL": slack.url + "/api/",
            "COUNTERSIGN_SECRETS_FILE": "/nonexistent/secrets.toml",
            "COUNTERSIGN_LINK_SECRETS": LINK_SECRET,
            "COUNTERSIGN_DEFAULT_CHANNELS": "auto",
        }
    )
    get_settings.cache_clear()
    try:
        yield Services(sendgrid, slack)
    finally:
        sendgrid.close()
        slack.close()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


@pytest.fixture
def inference_client(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The seed's ``{"provider": "inference_client"}`` model, scripted: it answers at once.
    Returns the keyword arguments each model was made with."""
    import smolagents

    from core.agents.rehearsal import RehearsalModel

    made: list[dict[str, Any]] = []

    def stand_in(**kwargs: Any) -> RehearsalModel:
        made.append(kwargs)
        return RehearsalModel([], "The critical operation is done.", code=True)

    monkeypatch.setattr(smolagents, "InferenceClientModel", stand_in)
    return made


@dataclass
class People:
    """People who answer what reaches them, from another thread, as from their inbox.

    ``answers``: email -> (decision, form data). ``notified`` says whether a
    request has reached them yet (default: as soon as it exists).
    """

    db: Database
    answers: dict[str, tuple[str, dict[str, Any] | None]]
    notified: Callable[[ApprovalRequest, str], bool] = lambda _request, _person: True
    answered: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        engine = ApprovalEngine(self.db)
        try:
            while not self._stop.is_set():
                for person, (decision, data) in self.answers.items():
                    for request in engine.list_pending_approvals(requested_from=person):
                        voted = {r.approver for r in engine.responses(request.id)}
                        if person not in voted and self.notified(request, person):
                            engine.respond_to_approval(
                                request.id, person, decision, data, comment="answered by the test's person"
                            )
                            self.answered.append((request.id, person, request.title))
                self._stop.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by __exit__
            self.errors.append(exc)

    def __enter__(self) -> People:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self.errors, self.errors


def stored_text(db: Database) -> str:
    """Everything the database holds about channels and events, as text."""
    with db.read() as session:
        rows: list[Any] = [c.settings for c in session.scalars(select(ChannelConfiguration))]
        rows += [[e.before, e.after, e.data] for e in session.scalars(select(WorkflowEvent))]
    return json.dumps(rows, default=str)


def channel_row(db: Database, channel: str) -> tuple[bool, dict[str, Any]]:
    with db.read() as session:
        row = session.scalars(
            select(ChannelConfiguration).where(ChannelConfiguration.channel == channel)
        ).one()
        return bool(row.enabled), dict(row.settings)


# -- Basic Usage ------------------------------------------------------------------------


def run_basic_usage(db: Database, url: str, services: Services, capsys: pytest.CaptureFixture[str]) -> str:
    source = EXAMPLE["Basic Usage"]
    assert source.count(SEED_DATABASE) == 1
    source = source.replace(SEED_DATABASE, url)

    def reached(_request: ApprovalRequest, person: str) -> bool:
        # admin@company.com answers once the email and the Slack message reached them.
        return bool(services.emails_to(person)) and bool(services.slack_posts())

    with People(db, {"admin@company.com": ("approve", None)}, reached) as people:
        run_example(source, {"__name__": "__main__"})
    assert [(who, title) for _, who, title in people.answered] == [
        ("admin@company.com", "Critical Operation Approval")
    ]
    return capsys.readouterr().out


def test_basic_usage(
    db: Database,
    async_url: str,
    services: Services,
    inference_client: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    printed = run_basic_usage(db, async_url, services, capsys)
    [line] = [line for line in printed.splitlines() if line.startswith("Workflow completed: ")]
    assert "'status': 'completed'" in line
    [workflow] = ops.list_workflows(db).rows
    assert (workflow.name, workflow.status) == ("Demo Workflow", "completed")
    output = workflow.step_outputs["critical_task"]
    assert output["approval"]["decided_by"] == "admin@company.com"
    # The task ran on the model the seed configured, as a code agent.
    assert output["model"] == "inference_client:default" and output["agent"] == "code"
    assert output["result"] == "The critical operation is done."
    assert len(inference_client) == 1
    # The request went out through both integrations the seed configured, with its secrets.
    [email] = services.emails_to("admin@company.com")
    assert email["_auth"] == "Bearer your-api-key"
    assert "Critical Operation Approval" in email["subject"]
    post = services.slack_posts()[0]
    assert post["_auth"] == "Bearer xoxb-your-token" and post["channel"] == "U0ADMIN"
    assert {"countersign_approve", "countersign_reject"} <= set(
        re.findall(r"countersign_\w+", json.dumps(post["blocks"]))
    )
    # Secrets went to the environment, never to the database.
    assert os.environ["SLACK_SIGNING_SECRET"] == "your-secret"
    assert not [s for s in SEED_SECRETS if s in stored_text(db)]
    assert channel_row(db, "slack") == (True, {})
    assert channel_row(db, "email") == (True, {"provider": "sendgrid"})


def test_basic_usage_with_a_psycopg_async_session(
    pg_url: str,
    services: Services,
    inference_client: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same example with psycopg's async driver instead of asyncpg."""
    db = Database(pg_url)
    try:  # create_async_engine picks psycopg's async driver for postgresql+psycopg
        printed = run_basic_usage(db, pg_url, services, capsys)
        assert "Workflow completed: " in printed and "'status': 'completed'" in printed
    finally:
        from core.store import db as core_db

        cached = core_db._default.pop(pg_url, None)
        if cached is not None:
            cached.dispose()
        db.dispose()


# -- Agent Tools Usage -----------------------------------------------------------------

# The rehearsal model stands in for the LLM reading the seed's task: the calls it
# would make (request_approval's approver input is ``approver``; see docs/switching.md).
READS_THE_TASK = [
    {
        "tool": "request_approval",
        "args": {
            "title": "File Deletion Approval",
            "description": "Need to delete 100GB of old backup files",
            "approval_type": "binary",
            "approver": "admin@company.com",
        },
    },
    {
        "tool": "create_checkpoint",
        "args": {"name": "before_file_deletion", "description": "Approved: deleting old backups next"},
    },
]


def test_agent_tools_usage(db: Database, async_url: str, services: Services) -> None:
    orchestrator = SmolAgentOrchestrator(
        db_session=async_url,
        model_config={"provider": "rehearsal", "plan": READS_THE_TASK},
        agent_type="code",
    )
    agent = orchestrator.agent
    from core.agents.seed_tools import ApprovalRequiredTool, CheckpointTool, RollbackTool

    assert agent.tool_classes == {
        "request_approval": ApprovalRequiredTool,
        "create_checkpoint": CheckpointTool,
        "rollback": RollbackTool,
    }
    with People(db, {"admin@company.com": ("approve", None)}) as people:
        namespace = run_example(EXAMPLE["Agent Tools Usage"], {"agent": agent})
    assert namespace["result"].startswith("Rehearsed: I need to delete important files.")
    [(approval_id, who, title)] = people.answered
    assert (who, title) == ("admin@company.com", "File Deletion Approval")
    workflow_id = agent.last_workflow_id
    assert workflow_id is not None
    request = ApprovalEngine(db).get(approval_id)
    assert (request.workflow_id, request.status) == (workflow_id, "approved")
    # After the approval, the checkpoint: in that order.
    types = event_types(db, workflow_id)
    assert types.index("approval.decided") < len(types) - 1 - types[::-1].index("checkpoint.created")
    assert [c.name for c in ops.checkpoints_of(db, workflow_id)][-1] == "before_file_deletion"
    calls = ops.get_workflow(db, workflow_id).step_outputs["agent_task"]["tool_calls"]
    assert [c["tool"] for c in calls] == ["create_checkpoint"]


# -- integrations ----------------------------------------------------------------------


def test_slack_integration(db: Database, async_url: str, services: Services) -> None:
    orchestrator = SmolAgentOrchestrator(db_session=async_url)
    run_example(EXAMPLE["Slack Integration"], {"orchestrator": orchestrator})
    assert os.environ["SLACK_BOT_TOKEN"] == "xoxb-your-bot-token"
    assert os.environ["SLACK_SIGNING_SECRET"] == "your-signing-secret"
    assert channel_row(db, "slack") == (True, {})
    assert "channel.configured" in [e.event_type for e in _all_events(db)]
    # "The system automatically creates interactive Slack messages with approval buttons."
    request = asyncio.run(
        orchestrator.request_human_approval(
            "Restart the cluster?",
            "rolling restart",
            "binary",
            "ops@company.com",
            wait=False,
            channels=["slack"],
        )
    )
    from core.channels.dispatcher import Dispatcher

    Dispatcher(db).dispatch_until_idle(wait_for_retries=False)
    [post] = services.slack_posts()
    assert post["_auth"] == "Bearer xoxb-your-bot-token"
    assert request.id in json.dumps(post["blocks"])
    assert "countersign_approve" in json.dumps(post["blocks"])
    assert not [s for s in SEED_SECRETS if s in stored_text(db)]


def _all_events(db: Database) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(session.scalars(select(WorkflowEvent).order_by(WorkflowEvent.id)))


def test_email_integration(db: Database, async_url: str, services: Services) -> None:
    orchestrator = SmolAgentOrchestrator(db_session=async_url)
    run_example(EXAMPLE["Email Integration"], {"orchestrator": orchestrator})
    # Both calls ran; the second (SMTP) is the one in force.
    assert channel_row(db, "email") == (
        True,
        {
            "provider": "smtp",
            "host": "smtp.gmail.com",
            "port": 587,
            "security": "starttls",
            "user": "your-email@gmail.com",
            "from": "noreply@company.com",
        },
    )
    assert os.environ["SENDGRID_API_KEY"] == "your-sendgrid-key"
    assert os.environ["COUNTERSIGN_SMTP_PASSWORD"] == "your-password"
    configured = [e for e in _all_events(db) if e.event_type == "channel.configured"]
    assert [(e.after or {})["settings"]["provider"] for e in configured] == ["sendgrid", "smtp"]
    assert not [s for s in SEED_SECRETS if s in stored_text(db)]


def test_email_over_smtp_reaches_the_mail_server(db: Database, async_url: str, services: Services) -> None:
    """The SMTP form of the seed's call, pointed at a mail server on loopback."""
    box = Mailbox()
    box.start()
    try:
        orchestrator = SmolAgentOrchestrator(db_session=async_url)
        status = orchestrator.configure_email_integration(
            smtp_config={
                "host": "127.0.0.1",
                "port": box.port,
                "use_tls": False,
                "from_email": "noreply@company.com",
            }
        )  # this mail server takes no login
        assert status["configured"] and status["provider"] == "smtp"
        request = asyncio.run(
            orchestrator.request_human_approval(
                "Pay invoice 42?",
                "ACME, due Friday",
                "binary",
                "finance@company.com",
                wait=False,
                channels=["email"],
            )
        )
        from core.channels.dispatcher import Dispatcher

        Dispatcher(db).dispatch_until_idle(wait_for_retries=False)
        [message] = box.received()
        assert message["To"] == "finance@company.com"
        assert message["From"] == "noreply@company.com"
        assert "Pay invoice 42?" in message["Subject"]
        assert request.id in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    finally:
        box.stop()


def test_webhook_integration(db: Database, async_url: str, services: Services) -> None:
    receiver = WebhookReceiver()
    os.environ["COUNTERSIGN_WEBHOOK_SECRET"] = WEBHOOK_SECRET  # as a deployment sets it
    try:
        orchestrator = SmolAgentOrchestrator(db_session=async_url)
        run_example(EXAMPLE["Webhook Integration"], {"orchestrator": orchestrator})
        assert channel_row(db, "webhook") == (True, {})
        # "Configure webhook URLs in approval requests", as the example's comment shows.
        request = asyncio.run(
            orchestrator.request_human_approval(
                "Ship order 7?",
                "",
                "binary",
                "ops@company.com",
                wait=False,
                channels=["webhook"],
                channel_configs={
                    "webhook": {
                        "url": receiver.url + "/approval-webhook",
                        "headers": {"Authorization": "Bearer token"},
                    }
                },
            )
        )
        from core.channels.dispatcher import Dispatcher

        Dispatcher(db).dispatch_until_idle(wait_for_retries=False)
        # The request to the approver, and the approval.requested event, both to the
        # request's own endpoint.
        delivered = {d["payload"]["type"]: d["payload"]["data"] for d in receiver.accepted()}
        assert delivered["approval.assigned"]["approval_id"] == request.id
        assert delivered["approval.assigned"]["approver"] == "ops@company.com"
        assert set(delivered) == {"approval.assigned", "approval.requested"}
        # Signed (verified by the receiver); the request's own headers are not sent.
        assert "authorization" not in receiver.recorded("/approval-webhook")[0]["headers"]
    finally:
        receiver.close()


def test_integrations_are_checked_as_the_environment_is(
    db: Database, async_url: str, services: Services
) -> None:
    orchestrator = SmolAgentOrchestrator(db_session=async_url)
    with pytest.raises(ConfigurationError, match="COUNTERSIGN_WEBHOOK_SECRET"):
        orchestrator.configure_webhook_integration()
    with pytest.raises(ConfigurationError, match="not a valid webhook secret"):
        orchestrator.configure_webhook_integration(secret="whsec_!!!")
    assert "COUNTERSIGN_WEBHOOK_SECRET" not in os.environ  # a refused call changes nothing
    status = orchestrator.configure_webhook_integration(["https://hooks.example/a"], secret=WEBHOOK_SECRET)
    assert status["configured"] and status["endpoints"] == ["https://hooks.example/a"]
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        orchestrator.configure_webhook_integration(["ftp://x"])
    with pytest.raises(ConfigurationError, match="sendgrid_api_key or smtp_config"):
        orchestrator.configure_email_integration()
    with pytest.raises(ConfigurationError, match="unknown key"):
        orchestrator.configure_email_integration(smtp_config={"host": "h", "api_token": "x"})
    with pytest.raises(ConfigurationError, match="port must be a number"):
        orchestrator.configure_email_integration(smtp_config={"host": "h", "port": "smtp"})
    with pytest.raises(ConfigurationError, match="security must be one of"):
        orchestrator.configure_email_integration(smtp_config={"host": "h", "security": "tls"})
    with pytest.raises(ConfigurationError, match="bot_token"):
        orchestrator.configure_slack_integration(bot_token="")
    with db.read() as session:
        channels = {c.channel for c in session.scalars(select(ChannelConfiguration))}
    assert channels == {"webhook"}


# -- Structured Logging, Workflow Status API -------------------------------------------


def test_structured_logging() -> None:
    with structlog.testing.capture_logs() as logs:
        run_example(EXAMPLE["Structured Logging"], {"__name__": "seed_example"})
    assert {"event": "Workflow started", "workflow_id": "123", "user": "admin", "log_level": "info"} in logs


async def deployment_waiting(orchestrator: SmolAgentOrchestrator) -> str:
    """The seed's deployment pipeline, created and run until its approval."""
    definition = (await await_example(EXAMPLE["Deployment Pipeline"], {}))["workflow_definition"]
    workflow = await orchestrator.create_workflow(name=definition["name"], workflow_definition=definition)
    report = await orchestrator.execute_workflow(wait=False)
    assert report["status"] == "waiting_approval"
    return workflow.id


def test_workflow_status_api(db: Database, async_url: str, services: Services) -> None:
    async def scenario() -> dict[str, Any]:
        orchestrator = SmolAgentOrchestrator(db_session=async_url, model_config={"provider": "rehearsal"})
        workflow_id = await deployment_waiting(orchestrator)
        return await await_example(
            EXAMPLE["Workflow Status API"], {"orchestrator": orchestrator, "workflow_id": workflow_id}
        )

    status = asyncio.run(scenario())["status"]
    # "Current step and progress, pending approvals, recent events, available checkpoints."
    assert (status["current_step"], status["progress"]) == (
        "deployment_approval",
        {"completed": 1, "total": 3},
    )
    [pending] = status["pending_approvals"]
    assert (pending["title"], pending["approvers"]) == ("Production Deploy Approval", ["devops@company.com"])
    assert "approval.requested" in [e["type"] for e in status["recent_events"]]
    assert [c["name"] for c in status["checkpoints"]] == [
        "after:pre_deployment_checks",
        "before:deployment_approval",
    ]


# -- Automatic Retry ---------------------------------------------------------------------


def test_automatic_retry_names_the_recovery_service() -> None:
    """The seed's block is the class's outline (a body of comments only), which Python
    cannot run as it stands; the class and coroutine it names are Countersign's."""
    sketch = EXAMPLE["Automatic Retry"]
    with pytest.raises(IndentationError):
        compile(sketch, "<seed example>", "exec")
    assert re.findall(r"class (\w+)|async def (\w+)", sketch) == [
        ("WorkflowRecoveryService", ""),
        ("", "recover_failed_workflows"),
    ]
    assert inspect.iscoroutinefunction(WorkflowRecoveryService.recover_failed_workflows)


def test_recover_failed_workflows(db: Database, async_url: str, services: Services) -> None:
    registry = ToolRegistry()
    outage = {"left": 4}  # two attempts per run: the outage outlasts two runs

    @registry.register("sync_ledger")
    def sync_ledger() -> dict[str, Any]:
        if outage["left"]:
            outage["left"] -= 1
            raise ConnectionError("ledger unreachable")
        return {"synced": True}

    @registry.register("parse_invoice")
    def parse_invoice() -> dict[str, Any]:
        raise ValueError("invoice 42 has no total")

    quick = {"max_attempts": 2, "backoff": {"initial": 0.01, "max": 0.01}}
    outage_id = ops.create_workflow(
        db,
        {
            "name": "ledger",
            "steps": [{"name": "sync", "type": "tool", "tool": "sync_ledger", "retry": quick}],
        },
    ).id
    bug_id = ops.create_workflow(
        db,
        {
            "name": "invoice",
            "steps": [{"name": "parse", "type": "tool", "tool": "parse_invoice", "retry": quick}],
        },
    ).id
    refused_id = ops.create_workflow(
        db,
        {
            "name": "refused",
            "steps": [
                {"name": "ok", "type": "approval", "approval_config": {"requested_from": "boss@company.com"}}
            ],
        },
    ).id
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    ApprovalEngine(db).respond_to_approval(
        ApprovalEngine(db).list_pending_approvals(workflow_id=refused_id)[0].id, "boss@company.com", "reject"
    )
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    assert {ops.get_workflow(db, w).status for w in (outage_id, bug_id, refused_id)} == {"failed"}

    service = WorkflowRecoveryService(db_session=async_url, max_recoveries=2)
    time.sleep(0.05)  # the policy's next backoff (10 ms) since the failure
    outcomes = {o.workflow_id: o for o in asyncio.run(service.recover_failed_workflows())}
    assert outcomes[outage_id].action == "retried"
    assert "transient" in outcomes[outage_id].reason
    assert outcomes[bug_id].action == "skipped" and "not transient" in outcomes[bug_id].reason
    assert outcomes[refused_id].action == "skipped"
    assert "person's decision" in outcomes[refused_id].reason
    # The outage outlasts the second round too: retried again, then no more.
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    assert ops.get_workflow(db, outage_id).status == "failed"
    outage["left"] = 2
    time.sleep(0.05)
    again = {o.workflow_id: o for o in asyncio.run(service.recover_failed_workflows())}
    assert again[outage_id].action == "retried"
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    assert ops.get_workflow(db, outage_id).status == "failed"
    time.sleep(0.05)
    third = {o.workflow_id: o for o in asyncio.run(service.recover_failed_workflows())}
    assert (third[outage_id].action, third[outage_id].reason) == (
        "skipped",
        "recovered 2 times already (max_recoveries)",
    )
    # With a larger budget, the next round finds the ledger back.
    more = WorkflowRecoveryService(db_session=async_url, max_recoveries=3)
    assert [o.action for o in asyncio.run(more.recover_failed_workflows()) if o.workflow_id == outage_id] == [
        "retried"
    ]
    build_runner(db, registry=registry, lease_seconds=10).run_until_idle(max_seconds=60)
    workflow = ops.get_workflow(db, outage_id)
    assert workflow.status == "completed" and workflow.step_outputs["sync"] == {"synced": True}
    assert event_types(db, outage_id).count("workflow.retried") == 3


# -- Manual Rollback ------------------------------------------------------------------------


def test_manual_rollback(db: Database, async_url: str, services: Services) -> None:
    async def scenario() -> dict[str, Any]:
        orchestrator = SmolAgentOrchestrator(db_session=async_url, model_config={"provider": "rehearsal"})
        await deployment_waiting(orchestrator)
        await orchestrator.create_checkpoint(
            "pre_deployment", "deployment_approval", "before anyone approves the deploy"
        )
        with People(db, {"devops@company.com": ("approve", {"note": "window ok"})}):
            report = await orchestrator.execute_workflow()
        assert report["status"] == "completed"
        return await await_example(EXAMPLE["Manual Rollback"], {"orchestrator": orchestrator})

    namespace = asyncio.run(scenario())
    workflow = namespace["workflow"]
    rollbacks = [e for e in _all_events(db) if e.event_type == "workflow.rolled_back"]
    # First to the named checkpoint, then to the latest one still standing.
    assert [(e.data["checkpoint"], e.data["reason"]) for e in rollbacks] == [
        ("pre_deployment", "Deployment failed validation"),
        ("pre_deployment", "General failure recovery"),
    ]
    assert workflow.status == "paused"
    assert list(workflow.step_outputs) == ["pre_deployment_checks"]
    assert namespace["orchestrator"].last_rollback.checkpoint == "pre_deployment"


# -- Example Workflows ----------------------------------------------------------------------


def test_order_processing_example(db: Database, async_url: str, services: Services) -> None:
    async def scenario() -> dict[str, Any]:
        definition = (await await_example(EXAMPLE["E-commerce Order Processing"], {}))["workflow_definition"]
        orchestrator = SmolAgentOrchestrator(db_session=async_url, model_config={"provider": "rehearsal"})
        await orchestrator.create_workflow(
            name=definition["name"],
            workflow_definition=definition,
            input_data={"amount": 1200, "currency": "USD"},
        )
        with People(db, {"finance@company.com": ("approve", None)}):
            return await orchestrator.execute_workflow()

    report = asyncio.run(scenario())
    assert report["status"] == "completed"
    assert report["step_outputs"]["payment_approval"]["approval"]["decided_by"] == "finance@company.com"
    assert [c["name"] for c in report["checkpoints"]] == ["after:validate_order", "before:payment_approval"]


def test_deployment_pipeline_example(db: Database, async_url: str, services: Services) -> None:
    async def scenario() -> dict[str, Any]:
        orchestrator = SmolAgentOrchestrator(db_session=async_url, model_config={"provider": "rehearsal"})
        await deployment_waiting(orchestrator)
        with People(db, {"devops@company.com": ("approve", {"note": "window ok"})}):
            return await orchestrator.execute_workflow()

    report = asyncio.run(scenario())
    assert report["status"] == "completed"
    assert set(report["step_outputs"]) == {"pre_deployment_checks", "deployment_approval", "deploy"}
    assert [c["name"] for c in report["checkpoints"]] == [
        "after:pre_deployment_checks",
        "before:deployment_approval",
        "after:deploy",
    ]


# -- the rest of the seed's API ---------------------------------------------------------


def test_execute_workflow_takes_the_seeds_task_and_context(
    db: Database, async_url: str, services: Services
) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        orchestrator = SmolAgentOrchestrator(db_session=async_url, model_config={"provider": "rehearsal"})
        workflow = await orchestrator.create_workflow(
            "Brief", workflow_definition={"steps": [{"name": "write", "task": "${context.task}"}]}
        )
        report = await orchestrator.execute_workflow(
            workflow.id, "Summarise the Q3 numbers", {"quarter": "Q3"}
        )
        return report, await orchestrator.get_workflow_status(workflow.id)

    report, status = asyncio.run(scenario())
    assert report["status"] == "completed"
    assert status["context"] == {"quarter": "Q3", "task": "Summarise the Q3 numbers"}
    assert report["step_outputs"]["write"]["result"] == "Rehearsed: Summarise the Q3 numbers"
    assert "workflow.state_updated" in [e["type"] for e in status["recent_events"]]


def test_the_api_reference_signatures() -> None:
    """Seed 002's API reference: each method, its parameters in the seed's order, awaitable."""
    reference = {
        "create_workflow": ["name", "description", "workflow_definition", "input_data", "created_by"],
        "execute_workflow": ["workflow_id", "task", "context"],
        "request_human_approval": ["title", "description", "approval_type"],
        "create_checkpoint": ["checkpoint_name", "step_name", "description"],
        "rollback_workflow": ["checkpoint_name", "reason"],
        "get_workflow_status": ["workflow_id"],
    }
    for method, names in reference.items():
        function = getattr(SmolAgentOrchestrator, method)
        assert inspect.iscoroutinefunction(function), method
        assert list(inspect.signature(function).parameters)[1 : len(names) + 1] == names, method
    from core.orchestrator_async import ApprovalEngine, StateManager

    for cls, reference in [
        (
            ApprovalEngine,
            {
                "request_approval": ["workflow_id", "title", "description"],
                "respond_to_approval": ["approval_id", "approver_id", "decision"],
                "expire_approval": ["approval_id"],
                "list_pending_approvals": ["requested_from", "workflow_id"],
            },
        ),
        (
            StateManager,
            {
                "create_workflow": ["name", "definition", "input_data"],
                "update_workflow_state": ["workflow_id", "new_state", "step_name"],
                "transition_workflow_status": ["workflow_id", "new_status"],
                "create_checkpoint": ["workflow_id", "checkpoint_name"],
                "rollback_workflow": ["workflow_id", "checkpoint_name"],
            },
        ),
    ]:
        for method, names in reference.items():
            function = getattr(cls, method)
            assert inspect.iscoroutinefunction(function), method
            assert list(inspect.signature(function).parameters)[1 : len(names) + 1] == names


def test_waiting_is_bounded_and_optional(db: Database, async_url: str, services: Services) -> None:
    async def scenario() -> None:
        orchestrator = SmolAgentOrchestrator(db_session=async_url)
        await orchestrator.create_workflow(
            "w",
            workflow_definition={
                "steps": [
                    {
                        "name": "ok",
                        "type": "approval",
                        "approval_config": {"requested_from": "boss@company.com"},
                    }
                ]
            },
        )
        assert (await orchestrator.execute_workflow(wait=False))["status"] == "waiting_approval"
        started = time.monotonic()
        report = await orchestrator.execute_workflow(wait_timeout=0.5)
        assert report["status"] == "waiting_approval" and time.monotonic() - started < 10
        # request_human_approval waits for the decision, as the seed's does.
        with People(db, {"cfo@company.com": ("approve", {"approved_amount": 900})}):
            request = await orchestrator.request_human_approval(
                "Raise the limit?",
                "to 900",
                "budget",
                "cfo@company.com",
                context_data={"amount": 1000, "currency": "EUR"},
            )
        assert (request.status, request.decided_by) == ("modified", "cfo@company.com")
        # The async ApprovalEngine and StateManager are the seed's, awaitable.
        pending = await orchestrator.approval_engine.list_pending_approvals("boss@company.com")
        assert [p.workflow_id for p in pending] == [orchestrator.workflow_id]
        decided = await orchestrator.approval_engine.respond_to_approval(
            pending[0].id, "boss@company.com", "approve"
        )
        assert decided.status == "approved"
        assert (await orchestrator.execute_workflow())["status"] == "completed"

    asyncio.run(scenario())


def test_an_async_session_names_the_database(db: Database, async_url: str, services: Services) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    async def scenario() -> str:
        engine = create_async_engine(async_url)
        try:
            async with async_sessionmaker(engine, class_=AsyncSession)() as session:
                orchestrator = SmolAgentOrchestrator(db_session=session)
                assert orchestrator.db.url == normalise_url(str(db.url))
                await orchestrator.create_workflow(
                    "w", workflow_definition={"steps": [{"name": "c", "type": "checkpoint"}]}
                )
                return (await orchestrator.execute_workflow())["status"]
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == "completed"
    with pytest.raises(WorkflowNotFound):
        asyncio.run(SmolAgentOrchestrator(db_session=async_url).get_workflow_status())


# -- the demo application ---------------------------------------------------------------------


def test_demo_application(
    db: Database, async_url: str, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import demo_application
    finally:
        sys.path.remove(str(ROOT / "examples"))
    outcomes = asyncio.run(demo_application.demo(async_url, False))
    assert outcomes == {
        "order_processing": "completed",
        "budget_multilevel": "completed",
        "deployment_pipeline": "rolled back (paused)",
        "document_review": "completed",
    }
    printed = capsys.readouterr().out
    for line in (
        "1. E-commerce order processing with approvals",
        "2. Multi-level budget approval",
        "3. Deployment pipeline with rollback",
        "4. Document review with multi-approvers",
        "cfo@example.com: approve -> request approved",
        "compensated deploy with rollback_release",
    ):
        assert line in printed
    assert len(ops.list_workflows(db).rows) == 4


def test_demo_application_runs_as_the_seed_says(tmp_path: Path) -> None:
    """``python examples/demo_application.py`` on the embedded SQLite database."""
    env = {k: v for k, v in os.environ.items() if k not in CHANNEL_ENV}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'countersign.db'}",
        COUNTERSIGN_SECRETS_FILE="/nonexistent/secrets.toml",
    )
    done = subprocess.run(
        [sys.executable, "examples/demo_application.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agents use the rehearsal model (no LLM)" in done.stdout
    assert done.stdout.count(": completed") == 3
    assert "deployment_pipeline: rolled back (paused)" in done.stdout


def test_demo_application_asks_at_the_prompt(tmp_path: Path) -> None:
    """``--ask``: the person at the terminal answers; a rejected payment fails the order."""
    env = {k: v for k, v in os.environ.items() if k not in CHANNEL_ENV}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'countersign.db'}",
        COUNTERSIGN_SECRETS_FILE="/nonexistent/secrets.toml",
    )
    # The order's payment is rejected; the budget's three levels, the deploy and two
    # reviewers approve.
    answers = "r\n" + "a\n" * 6
    done = subprocess.run(
        [sys.executable, "examples/demo_application.py", "--ask"],
        cwd=ROOT,
        env=env,
        input=answers,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("approve or reject? [A/r]") == 7
    assert "finance@example.com: reject -> request rejected" in done.stdout
    assert "order_processing: failed" in done.stdout
    assert "budget_multilevel: completed" in done.stdout
    assert "document_review: completed" in done.stdout


# -- what does not need a database ---------------------------------------------------------------


def test_async_urls_name_the_same_database() -> None:
    assert (
        sync_url("postgresql+asyncpg://u:p@h:5432/d?ssl=require&command_timeout=5")
        == "postgresql+psycopg://u:p@h:5432/d?sslmode=require"
    )
    assert sync_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    assert sync_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    with pytest.raises(ConfigurationError, match="in-memory"):
        sync_url("sqlite+aiosqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="PostgreSQL or SQLite"):
        sync_url("mysql+aiomysql://u@h/d")
    with pytest.raises(ConfigurationError, match="db_session must be"):
        SmolAgentOrchestrator(db_session=42)


def test_model_config_keeps_secrets_out_of_definitions() -> None:
    from core.orchestrator import agent_defaults

    assert agent_defaults({"provider": "inference_client", "model_id": "m", "temperature": 0.2}, "code") == {
        "type": "code",
        "model": {"provider": "inference_client", "model_id": "m", "options": {"temperature": 0.2}},
    }
    with pytest.raises(ConfigurationError, match="api_key_env"):
        agent_defaults({"provider": "openai", "api_key": "sk-1"}, None)
    with pytest.raises(ConfigurationError, match="agent_type"):
        agent_defaults(None, "managed")


def test_seed_tool_classes_are_smolagents_tools() -> None:
    from smolagents import Tool

    from core import orchestrator_async
    from core.agents.tools import CreateCheckpointTool, RequestApprovalTool, RollbackTool

    for name, ours in [
        ("ApprovalRequiredTool", RequestApprovalTool),
        ("ApprovalTool", RequestApprovalTool),
        ("ApprovalRequestTool", RequestApprovalTool),
        ("CheckpointTool", CreateCheckpointTool),
        ("RollbackTool", RollbackTool),
    ]:
        seed_class = getattr(orchestrator_async, name)
        assert seed_class is ours and issubclass(seed_class, Tool)
    assert set(RequestApprovalTool.inputs) >= {"title", "description", "approval_type"}
    assert set(RollbackTool.inputs) == {"checkpoint", "reason"}
