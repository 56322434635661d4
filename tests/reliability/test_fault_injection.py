"""Fault injection: 50 workflows through three ``python -m core runner`` processes
while a killer SIGKILLs runners at random moments (and starts replacements),
the SMTP server is down for the first seconds and the Slack API goes away
for a while. An approver answers each request from the first message that
reaches them: the email's signed link or the Slack button.

At the end, printed as a table and asserted to be 0: workflows lost (gone,
failed, or a step's effect missing), workflows stuck (not finished in time),
steps whose side effect ran under two idempotency keys, and notifications
lost (not delivered, or marked sent but never received by the stand-in).
Re-runs under the same key and messages delivered twice are allowed (the
engine promises at-least-once with a stable key) and printed beside.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from core.approvals.links import respond_with_link
from core.base.errors import CountersignError
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import ApprovalRequest, Notification, StepRun, Workflow, utcnow
from gateway.slack import handle_interaction
from tests.integration.channels.conftest import LINK_SECRET, Mailbox, SlackAPI
from tests.reliability.fault_tools import journal_lines
from tests.reliability.report import FaultResult, fault_table, render, show

ROOT = Path(__file__).resolve().parents[2]
# bench/reliability.py runs this longer through these variables.
WORKFLOWS = int(os.environ.get("COUNTERSIGN_CHAOS_WORKFLOWS") or 50)
MAX_KILLS = int(os.environ.get("COUNTERSIGN_CHAOS_KILLS") or 8)
RUNNERS = 3
KILL_GAP = (1.0, 3.0)  # seconds between kills, drawn at random
SLACK_DOWN = (4.0, 16.0)  # seconds after the start: the Slack API refuses connections
SMTP_UP_AT = 10.0  # the mail server's port is closed until then
# After the last kill, everything must be finished within this.
SETTLE_SECONDS = float(os.environ.get("COUNTERSIGN_CHAOS_SETTLE_SECONDS") or 60)
BOOT_SECONDS = 60.0  # the first runner process must be up within this
APPROVER = "approver@example.com"
APPROVER_SLACK = "U0APPROVER"
SLACK_TOKEN = "xoxb-test-token"
TERMINAL = ("completed", "failed", "cancelled")

pytestmark = pytest.mark.timeout(int(240 + 2 * WORKFLOWS + 3 * MAX_KILLS + SETTLE_SECONDS))


# -- the stand-ins going down and up ------------------------------------------------------


class SwitchableSlack:
    """The Slack stand-in, whose port can be closed and reopened (connection refused meanwhile)."""

    def __init__(self, api: SlackAPI) -> None:
        self.api = api
        self.port = api.server.server_address[1]
        self.handler = api.server.RequestHandlerClass

    def down(self) -> None:
        self.api.server.shutdown()
        self.api.server.server_close()

    def up(self) -> None:
        self.api.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.api.thread = threading.Thread(target=self.api.server.serve_forever, daemon=True)
        self.api.thread.start()


# -- runner processes -------------------------------------------------------------------------


def runner_env(db_url: str, smtp_port: int, slack_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COUNTERSIGN_", "SLACK_", "SENDGRID_"))}
    env.update(
        DATABASE_URL=db_url,
        PYTHONUNBUFFERED="1",
        COUNTERSIGN_LEASE_SECONDS="2",
        COUNTERSIGN_TOOL_MODULES="tests.reliability.fault_tools",
        COUNTERSIGN_SECRETS_FILE="/nonexistent/secrets.toml",
        COUNTERSIGN_LINK_SECRETS=LINK_SECRET,
        COUNTERSIGN_DEFAULT_CHANNELS="email,slack",
        COUNTERSIGN_SMTP_HOST="127.0.0.1",
        COUNTERSIGN_SMTP_PORT=str(smtp_port),
        COUNTERSIGN_SMTP_SECURITY="none",
        COUNTERSIGN_SMTP_TIMEOUT="3",
        COUNTERSIGN_SMTP_FROM="Countersign <approvals@countersign.test>",
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        SLACK_API_URL=slack_url + "/api/",
        SLACK_USER_MAP=json.dumps({APPROVER: APPROVER_SLACK}),
        # Deliveries retried quickly and never given up on; a dead dispatcher's claims lapse soon.
        COUNTERSIGN_NOTIFY_MAX_ATTEMPTS="100000",
        COUNTERSIGN_NOTIFY_BACKOFF_INITIAL="0.2",
        COUNTERSIGN_NOTIFY_BACKOFF_MAX="1",
        COUNTERSIGN_BREAKER_THRESHOLD="3",
        COUNTERSIGN_BREAKER_COOLDOWN="0.5",
        COUNTERSIGN_DISPATCH_POLL_SECONDS="0.1",
        COUNTERSIGN_DISPATCH_CLAIM_SECONDS="3",
        COUNTERSIGN_LOG_FORMAT="json",
        COUNTERSIGN_LOG_LEVEL="WARNING",
    )
    return env


class RunnerPool:
    """``python -m core runner`` processes; killed ones are replaced at once."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.live: list[subprocess.Popen[bytes]] = []
        self.log_paths: list[Path] = []
        self.started = 0
        self.killed = 0

    def start_one(self) -> None:
        path = self.logs / f"runner-{self.started}.log"
        self.log_paths.append(path)
        log = path.open("wb")
        self.live.append(
            subprocess.Popen(
                [sys.executable, "-m", "core", "runner"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        log.close()
        self.started += 1

    def ready(self) -> list[int]:
        """Pids of live runners that finished booting (they print "runner ... started")."""
        return [
            p.pid
            for p, log in zip(self.live, self.log_paths, strict=True)
            if p.poll() is None and b" started" in log.read_bytes()
        ]

    def kill(self, pid: int) -> None:
        [index] = [i for i, p in enumerate(self.live) if p.pid == pid]
        os.kill(pid, signal.SIGKILL)
        self.live[index].wait(10)
        del self.live[index], self.log_paths[index]
        self.killed += 1
        self.start_one()

    def stop(self) -> None:
        for proc in self.live:
            proc.send_signal(signal.SIGTERM)
        for proc in self.live:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.live.clear()


# -- the approver -----------------------------------------------------------------------------


APPROVE_LINK = re.compile(r"/email/confirm\?token=([A-Za-z0-9_.%-]+)")


@dataclass
class Approver:
    """Answers each request from the first email or Slack message about it that arrives."""

    db: Database
    mailbox: Mailbox
    slack: SlackAPI
    answered: dict[str, str] = field(default_factory=dict)  # approval id -> channel
    refused: list[str] = field(default_factory=list)
    _seen_mail: int = 0
    _seen_posts: int = 0

    def poll(self) -> None:
        messages = self.mailbox.received()
        for message in messages[self._seen_mail :]:
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            approve = next((unquote(t) for t in APPROVE_LINK.findall(text)), None)
            assert approve is not None, text
            self._answer(lambda token=approve: respond_with_link(self.db, token).id, "email")
        self._seen_mail = len(messages)
        posts = list(self.slack.posted)
        for post in posts[self._seen_posts :]:
            approval_id = post["metadata"]["event_payload"]["approval_id"]
            if approval_id in self.answered:
                continue
            # The Approve button as posted: its value names the request's level (core.approvals.once).
            [value] = [
                e["value"]
                for b in post["blocks"]
                if b.get("type") == "actions"
                for e in b["elements"]
                if e.get("action_id") == "countersign_approve"
            ]
            payload = {
                "type": "block_actions",
                "user": {"id": APPROVER_SLACK},
                "actions": [
                    {"action_id": "countersign_approve", "value": value, "action_ts": f"{time.time():.6f}"}
                ],
            }
            reply = handle_interaction(self.db, payload)
            if reply.ok:
                self.answered[approval_id] = "slack"
            elif "already" not in reply.text:
                self.refused.append(reply.text)
        self._seen_posts = len(posts)

    def _answer(self, action: Callable[[], str], channel: str) -> None:
        try:
            self.answered.setdefault(action(), channel)
        except CountersignError as exc:
            # Already answered through the other channel: the request is closed.
            if "already" not in str(exc):
                self.refused.append(str(exc))


# -- the run ----------------------------------------------------------------------------------


def definition(index: int, journal: Path, rng: random.Random) -> dict[str, Any]:
    def effect(step: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": step,
            "type": "tool",
            "tool": "journaled_effect",
            **extra,
            "args": {
                "journal": str(journal),
                "label": f"w{index}.{step}",
                "seconds": round(rng.uniform(0.05, 0.4), 2),
            },
        }

    gate = {
        "name": "gate",
        "type": "approval",
        "approval_config": {
            "title": f"Release {index}",
            "requested_from": APPROVER,
            "channels": ["email", "slack"],
        },
    }
    shapes = [
        [effect("prepare"), gate, effect("apply")],
        [effect("prepare"), effect("build", create_checkpoint=True), effect("apply")],
        [gate, effect("apply")],
    ]
    return {"name": f"chaos {index}", "steps": shapes[index % len(shapes)]}


def tool_labels(definitions: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every tool step's journal label -> its workflow id."""
    return {
        step["args"]["label"]: workflow_id
        for workflow_id, d in definitions.items()
        for step in d["steps"]
        if step["type"] == "tool"
    }


@dataclass
class Outcome:
    result: FaultResult
    details: list[tuple[str, Any]]


def audit(
    db: Database,
    definitions: dict[str, dict[str, Any]],
    journal: Path,
    mailbox: Mailbox,
    slack: SlackAPI,
    scenario: str,
) -> Outcome:
    with db.read() as session:
        workflows = {w.id: w for w in session.scalars(select(Workflow)).all()}
        runs = list(session.scalars(select(StepRun)).all())
        notifications = list(session.scalars(select(Notification)).all())
    keys_by_label: dict[str, set[str]] = defaultdict(set)
    calls = journal_lines(str(journal))
    for label, key, _pid in calls:
        keys_by_label[label].add(key)
    labels = tool_labels(definitions)

    completed_keys = {
        (r.workflow_id, r.step_name): r.idempotency_key for r in runs if r.status == "completed"
    }
    lost_ids = set()
    for workflow_id in definitions:
        workflow = workflows.get(workflow_id)
        if workflow is None or workflow.status in ("failed", "cancelled"):
            lost_ids.add(workflow_id)
    for label, workflow_id in labels.items():
        step = label.split(".", 1)[1]
        key = completed_keys.get((workflow_id, step))
        if (
            workflows.get(workflow_id) is not None
            and workflows[workflow_id].status == "completed"
            and (key is None or key not in keys_by_label.get(label, set()))
        ):
            lost_ids.add(workflow_id)  # finished, yet the step's effect is missing
    stuck = [w for w in definitions if w in workflows and workflows[w].status not in TERMINAL]
    twice_without_key = [label for label, keys in keys_by_label.items() if len(keys) > 1]
    reruns_same_key = len(calls) - len(keys_by_label)

    mail_ids = [str(m["Message-ID"]).strip("<>").split(".", 1)[0] for m in mailbox.received()]
    post_ids = [p["metadata"]["event_payload"]["notification_id"] for p in slack.posted]
    updates = {(p["channel"], p["ts"]) for p in slack.payloads("chat.update")}
    lost_notes = []
    for note in notifications:
        ref = note.external_ref or {}
        if note.status != "sent":
            lost_notes.append((note.id, note.status))
        elif "skipped" in ref:
            continue  # the request was already decided when its turn came: nothing to ask
        elif note.channel == "email" and note.id not in mail_ids:
            lost_notes.append((note.id, "marked sent, never received"))
        elif note.channel == "slack" and note.kind == "approval.requested" and note.id not in post_ids:
            lost_notes.append((note.id, "marked sent, never posted"))
        elif (
            note.channel == "slack"
            and note.kind == "approval.decided"
            and not all((u["channel"], u["ts"]) in updates for u in ref.get("updated", []))
        ):
            lost_notes.append((note.id, "marked sent, message never updated"))
    duplicates = (len(mail_ids) - len(set(mail_ids))) + (len(post_ids) - len(set(post_ids)))
    details = [
        ("workflows", len(definitions)),
        ("tool step executions (journal)", len(calls)),
        ("re-runs with the same idempotency key (allowed)", reruns_same_key),
        ("notifications (outbox rows)", len(notifications)),
        ("skipped: request already decided", sum("skipped" in (n.external_ref or {}) for n in notifications)),
        ("messages delivered twice (allowed, same id)", duplicates),
        (
            "failed delivery attempts while down: email / Slack",
            " / ".join(
                str(sum(max(n.attempts - 1, 0) for n in notifications if n.channel == c))
                for c in ("email", "slack")
            ),
        ),
        ("lost workflow ids", sorted(lost_ids)[:5]),
        ("stuck workflow ids", stuck[:5]),
        ("labels under two keys", twice_without_key[:5]),
        ("lost notifications", lost_notes[:5]),
    ]
    return Outcome(
        FaultResult(scenario, len(lost_ids), len(stuck), len(twice_without_key), len(lost_notes)), details
    )


def finished(db: Database, ids: list[str]) -> bool:
    with db.read() as session:
        statuses = session.scalars(select(Workflow.status).where(Workflow.id.in_(ids))).all()
        open_notes = session.scalars(
            select(Notification.id).where(Notification.status != "sent").limit(1)
        ).first()
    return len(statuses) == len(ids) and all(s in TERMINAL for s in statuses) and open_notes is None


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, SlackAPI]]:
    # This process answers as the approver: links signed like the runners', Slack ids mapped.
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", "/nonexistent/secrets.toml")
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({APPROVER: APPROVER_SLACK}))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    mailbox, slack = Mailbox(), SlackAPI()
    slack.users[APPROVER] = APPROVER_SLACK
    yield mailbox, slack
    mailbox.stop()
    slack.close()


def test_sigkilled_runners_and_channel_outages_lose_nothing(
    request: pytest.FixtureRequest, db_url: str, stand_ins: tuple[Mailbox, SlackAPI], tmp_path: Path
) -> None:
    seed = int(os.environ.get("COUNTERSIGN_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    rng = random.Random(seed)
    mailbox, slack_api = stand_ins
    slack = SwitchableSlack(slack_api)
    db = Database(db_url)
    journal = tmp_path / "effects.journal"
    pool = RunnerPool(runner_env(db_url, mailbox.port, slack_api.url), tmp_path)
    approver = Approver(db, mailbox, slack_api)
    timers = [
        threading.Timer(SLACK_DOWN[0], slack.down),
        threading.Timer(SLACK_DOWN[1], slack.up),
        threading.Timer(SMTP_UP_AT, mailbox.start),
    ]
    definitions: dict[str, dict[str, Any]] = {}
    kills_mid_step = 0
    try:
        add_user(db, "agent@example.com", role="service")  # who starts workflows has an account
        for index in range(WORKFLOWS):
            spec = definition(index, journal, rng)
            definitions[ops.create_workflow(db, spec, created_by="agent@example.com").id] = spec
        ids = list(definitions)
        for _ in range(RUNNERS):
            pool.start_one()
        boot_by = time.monotonic() + BOOT_SECONDS
        while not pool.ready():
            assert time.monotonic() < boot_by, f"no runner started within {BOOT_SECONDS:g} s"
            time.sleep(0.05)
        started, wall_start = time.monotonic(), utcnow()
        for timer in timers:
            timer.start()

        # The killer: at random moments, a runner that is up and working: half the
        # time the one whose step started last (so it dies mid-step), else any.
        # It waits for a second runner to be up, so the work goes on meanwhile.
        next_kill = started + rng.uniform(*KILL_GAP)
        while pool.killed < MAX_KILLS and not finished(db, ids):
            approver.poll()
            ready = pool.ready()
            if time.monotonic() >= next_kill and len(ready) >= 2:
                calls = journal_lines(str(journal))
                latest = calls[-1][2] if calls else None
                mid_step = latest in ready and rng.random() < 0.5
                pool.kill(latest if mid_step and latest is not None else rng.choice(ready))
                kills_mid_step += mid_step
                next_kill = time.monotonic() + rng.uniform(*KILL_GAP)
            time.sleep(0.05)

        settle_by = time.monotonic() + SETTLE_SECONDS
        while not finished(db, ids) and time.monotonic() < settle_by:
            approver.poll()
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        for timer in timers:
            timer.cancel()
        pool.stop()

    scenario = (
        f"{db.dialect}: {pool.killed} runner SIGKILLs, SMTP down {SMTP_UP_AT:g} s, "
        f"Slack down {SLACK_DOWN[1] - SLACK_DOWN[0]:g} s"
    )
    outcome = audit(db, definitions, journal, mailbox, slack_api, scenario)
    with db.read() as session:
        first_request = session.scalar(select(func.min(ApprovalRequest.created_at)))
    first_at = (first_request - wall_start).total_seconds() if first_request else None
    details = [
        ("seed (COUNTERSIGN_CHAOS_SEED)", seed),
        ("seconds", round(elapsed, 1)),
        ("first approval requested at (s)", round(first_at or -1, 1)),
        ("runner processes started", pool.started),
        ("kills of the runner whose step started last", kills_mid_step),
        (
            "answered by email / Slack",
            f"{sum(c == 'email' for c in approver.answered.values())}"
            f" / {sum(c == 'slack' for c in approver.answered.values())}",
        ),
        *outcome.details,
    ]
    db.dispose()
    show(
        request,
        fault_table([outcome.result])
        + "\n\n"
        + render(f"Fault injection details ({db.dialect})", ("measure", "value"), details),
    )
    assert approver.refused == [], approver.refused
    assert pool.killed >= 3, f"only {pool.killed} kills happened before the work was done"
    assert outcome.result.clean, fault_table([outcome.result]) + "\n" + repr(outcome.details)
