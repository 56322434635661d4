"""The runner: claims runnable workflows and executes them.

A workflow is claimable when its status is ``running``, its ``runnable_at``
has passed and no unexpired lease is held. Claiming is one atomic UPDATE of a
few rows picked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises
writers; core.engine.claim_queue keeps those not started yet), so many runner
processes on many machines share the work. A
heartbeat extends the leases of workflows being executed; a runner killed
mid-step stops extending, its lease runs out, and another runner takes the
workflow over and runs the interrupted step again with the same idempotency
key. Idle runners sleep until woken (LISTEN/NOTIFY or the in-process signal)
or until the next timer (a retry backoff or an approval deadline) is due.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

import structlog
from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, or_, select, update

from core.approvals.delegation import due_backups
from core.approvals.engine import ApprovalEngine
from core.approvals.expiry import due_expiries
from core.approvals.reminder_sender import due_reminders, send_due_reminders
from core.approvals.reminders import next_reminder
from core.base.retry import backoff_delay, first_line, is_database_unavailable
from core.engine.claim_queue import ClaimQueue, claim_batch, claim_workflows
from core.engine.executor import StepExecutor, TaskHandler, rehearsal_task
from core.engine.tools import ToolRegistry, default_registry
from core.store.tables import RunnerHeartbeat, UTCDateTime, Workflow, utcnow
from core.telemetry.metrics import runner_metrics

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Longest sleep between checks when nothing wakes the runner. On PostgreSQL
# NOTIFY wakes it at once, so this only bounds the cost of a lost wake-up;
# on SQLite it is how runners in other processes notice work.
IDLE_WAIT_POSTGRES = 5.0
IDLE_WAIT_SQLITE = 0.25
# How often leases and the heartbeat row are refreshed, as a share of the lease.
HEARTBEAT_FRACTION = 1 / 3
DEFAULT_LEASE_SECONDS = 30.0
# While the database is unreachable (restarting, network down) the loop
# waits 0.5 s, then twice as long after each further failure, at most 5 s,
# and logs one plain line per try instead of a traceback. A LISTEN
# reconnection wakes it at once.
DATABASE_RETRY_INITIAL = 0.5
DATABASE_RETRY_MULTIPLIER = 2.0
DATABASE_RETRY_MAX = 5.0
# Wait after any other error in the loop (a bug): keep going, slowly.
LOOP_ERROR_WAIT = 1.0
# Wait before claiming again a workflow claimable now that the last claim skipped
# (its row was locked by another transaction): see ``Runner._idle_wait``.
CLAIM_RETRY_WAIT = 0.01


class Background(Protocol):
    """A job that runs beside the workers (the outbox dispatcher)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def claim_next_workflow(db: Database, runner_id: str, lease_seconds: float) -> str | None:
    """Take the lease of the next runnable workflow; its id, or None."""
    claimed = claim_workflows(db, runner_id, lease_seconds, 1)
    return claimed[0] if claimed else None


def _soonest_claimable(now: datetime | ColumnElement[datetime]) -> Select[datetime | None]:
    return select(func.min(Workflow.runnable_at)).where(
        Workflow.status == "running",
        or_(
            Workflow.runnable_at > now,
            and_(
                Workflow.runnable_at <= now,
                or_(Workflow.lease_owner.is_(None), Workflow.lease_expires_at < now),
            ),
        ),
    )


@dataclass(frozen=True)
class IdleProbe:
    """What an idle runner has left to do, read in one statement (``idle_probe``)."""

    sweeps_due: bool  # a request's deadline passed, or a backup or a reminder came due
    # When the soonest workflow can be claimed: now (one came due or was handed back
    # since the last claim) or at the soonest future retry; None when neither.
    next_claimable: datetime | None


# The probe's statement, built once with ``now`` bound at each call: building the
# expression on every probe cost the runner more CPU than the read itself.
_NOW = bindparam("now", type_=UTCDateTime())
_PROBE = select(
    or_(due_expiries(_NOW).exists(), due_backups(_NOW).exists(), due_reminders(_NOW).exists()),
    _soonest_claimable(_NOW).scalar_subquery(),
)


def idle_probe(db: Database) -> IdleProbe:
    """Whether any sweep has work (the sweeps' own selections, as EXISTS) and when the
    soonest workflow can be claimed: one read, where each sweep would make its own."""
    with db.runner_read() as session:
        row = session.execute(_PROBE, {"now": utcnow()}).one()
    return IdleProbe(bool(row[0]), row[1])


class Runner:
    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 1,
        registry: ToolRegistry | None = None,
        task_handler: TaskHandler | None = None,
        lease_seconds: float | None = None,
        runner_id: str | None = None,
        dispatcher: Background | None = None,
        alert_job: Callable[[Database], object] | None = None,
    ) -> None:
        """A runner over ``db``. What it runs beside the engine comes from the
        composition root (``core.runtime.build_runner``): the task handler for
        agent steps (default: the labelled rehearsal stand-in), the outbox
        ``dispatcher`` started and stopped with the workers, and the ``alert_job``
        its heartbeat thread evaluates every COUNTERSIGN_ALERT_INTERVAL."""
        from core.base.config import get_settings

        self.db = db
        self.concurrency = concurrency
        self.registry = registry or default_registry
        self.lease_seconds = lease_seconds or get_settings().lease_seconds
        self.runner_id = runner_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.executor = StepExecutor(
            db, self.registry, self.runner_id, task_handler=task_handler or rehearsal_task
        )
        self.approvals = ApprovalEngine(db)
        self.idle_wait = IDLE_WAIT_POSTGRES if db.is_postgres else IDLE_WAIT_SQLITE
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self.log = log.bind(runner=self.runner_id)
        # The outbox dispatcher runs beside the workers in start()/stop().
        self.dispatcher = dispatcher
        self.alert_job = alert_job
        self._alerts_due = 0.0
        self._alerts_lock = threading.Lock()
        # Workflows whose execution a database outage interrupted: their
        # leases are let go as soon as the database answers again, so they
        # are taken up at once instead of after the lease runs out.
        self._interrupted: set[str] = set()
        # Batch claims (core.engine.claim_queue): leased, not started yet. A claim's
        # slice hands its workflow back when these wait (fairness).
        self.claims = ClaimQueue(claim_batch())
        self.executor.queued = self.claims.__len__
        self.executor.claimed_read = self.claims.read_of

    # -- one unit of work -----------------------------------------------------

    def run_once(self) -> bool:
        """Claim and run one workflow; False when nothing was runnable."""
        workflow_id = self.claims.take(self.db, self.runner_id, self.lease_seconds)
        if workflow_id is None:
            return False
        runner_metrics.claims.inc()
        with self._active_lock:
            self._active.add(workflow_id)
        try:
            self.executor.run_claimed(workflow_id)
        except Exception as exc:
            # A database outage or a bug: keep the runner alive; the lease
            # runs out (or is handed back) and the workflow is retried.
            runner_metrics.error("execute", exc)
            if is_database_unavailable(exc):
                self._interrupted.add(workflow_id)
                self.log.warning(
                    "database unavailable; workflow handed back once it answers",
                    workflow_id=workflow_id,
                    error=first_line(exc),
                )
            else:
                self.log.exception("workflow execution failed", workflow_id=workflow_id)
        finally:
            with self._active_lock:
                self._active.discard(workflow_id)
        return True

    def run_until_idle(self, *, wait_for_retries: bool = True, max_seconds: float = 300.0) -> int:
        """Run until nothing is runnable; returns steps executed.

        Retries scheduled a short while ahead are waited for; approval
        deadlines are not (they may be hours away), but due ones are applied.
        """
        deadline = utcnow() + timedelta(seconds=max_seconds)
        start = self.executor.steps_executed
        # Leases of long steps are renewed here too, or another runner
        # would take a workflow over while its step is still running.
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(done,), name="countersign-heartbeat", daemon=True
        )
        heartbeat.start()
        # Claim first: work may have come since the last call.
        self.claims.last_claim_short = False
        try:
            while utcnow() < deadline:
                if self._worth_claiming() and self.run_once():
                    continue
                probe = idle_probe(self.db)
                if probe.sweeps_due and (self.approvals.expire_due() or self.send_reminders()):
                    continue
                due = probe.next_claimable
                if due is not None and due <= utcnow():  # claimable now: claim it
                    if self.run_once():
                        continue
                    break
                if due is None or not wait_for_retries:
                    break
                self._stop.wait(max(0.0, min((due - utcnow()).total_seconds(), 5.0)) + 0.01)
        finally:
            done.set()
            heartbeat.join(self.lease_seconds)
            self.claims.hand_back(self.db, self.runner_id)  # left by max_seconds
        return self.executor.steps_executed - start

    def _worth_claiming(self) -> bool:
        """False when the queue is empty and the last claim left nothing behind (it leased
        fewer than a batch): a claim now would most likely find nothing, and the idle probe
        that runs instead says, in the same round trip, whether anything came due since
        (``run_until_idle`` then claims). Saves the empty claim that ended every batch."""
        return len(self.claims) > 0 or not self.claims.last_claim_short

    # -- the long-running loop --------------------------------------------------

    def start(self) -> None:
        """Start worker threads and the heartbeat in the background."""
        self.db.wakeup.start_listening()
        self._register()
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"countersign-runner-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(self._stop, True), name="countersign-heartbeat", daemon=True
        )
        heartbeat.start()
        self._threads.append(heartbeat)
        if self.dispatcher is not None:
            self.dispatcher.start()
        self.log.info("runner started", concurrency=self.concurrency, database=self.db.dialect)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.db.wakeup.signal.fire()
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        try:
            self.claims.hand_back(self.db, self.runner_id)
        except Exception as exc:  # noqa: BLE001 - their leases run out instead
            runner_metrics.error("heartbeat", exc)
            self.log.warning("could not hand back the queued workflows", error=first_line(exc))
        self._unregister()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    def _work(self) -> None:
        signal = self.db.wakeup.signal
        outage_tries = 0
        while not self._stop.is_set():
            seen = signal.generation
            try:
                self._hand_back_interrupted()
                if self.run_once():
                    continue
                probe = idle_probe(self.db)
                if probe.sweeps_due and (self.approvals.expire_due() or self.send_reminders()):
                    continue
                wait = self._idle_wait(probe.next_claimable)
                if outage_tries:
                    self.log.info("database answers again", tries=outage_tries)
                outage_tries = 0
            except Exception as exc:
                runner_metrics.error("loop", exc)
                if is_database_unavailable(exc):
                    outage_tries += 1
                    wait = backoff_delay(
                        DATABASE_RETRY_INITIAL, DATABASE_RETRY_MULTIPLIER, DATABASE_RETRY_MAX, outage_tries
                    )
                    self.log.warning(
                        "database unavailable; retrying",
                        retry_in=wait,
                        tries=outage_tries,
                        error=first_line(exc),
                    )
                else:
                    self.log.exception("runner loop error; retrying")
                    wait = LOOP_ERROR_WAIT
            signal.wait_for_change(seen, wait)

    def send_reminders(self) -> int:
        """Queue the reminders that are due (core.approvals.reminders); how many went out."""
        return send_due_reminders(self.db, runner_id=self.runner_id)

    def _hand_back_interrupted(self) -> None:
        """Let go of the leases a database outage left behind (see ``run_once``)."""
        if not self._interrupted:
            return
        interrupted = list(self._interrupted)
        with self._active_lock:
            interrupted = [w for w in interrupted if w not in self._active]
        with self.db.session() as session:
            session.execute(
                update(Workflow)
                .where(Workflow.id.in_(interrupted), Workflow.lease_owner == self.runner_id)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
        self._interrupted.difference_update(interrupted)
        self.log.info("interrupted workflows handed back", workflows=len(interrupted))

    def _idle_wait(self, next_claimable: datetime | None) -> float:
        """How long to sleep unless woken: until the soonest timer, deadline or reminder.

        A workflow claimable now that the claim did not take (it skips rows another
        transaction holds locked, as the one that just woke it may still, for an
        instant) is tried again after ``CLAIM_RETRY_WAIT``, not after the idle wait:
        the wake-up that announced it has been spent."""
        wait = self.idle_wait
        if next_claimable is not None:
            wait = min(wait, max(CLAIM_RETRY_WAIT, (next_claimable - utcnow()).total_seconds()))
        for due in (self.approvals.next_expiry(), next_reminder(self.db)):
            if due is not None:
                wait = min(wait, max(0.0, (due - utcnow()).total_seconds()))
        return wait

    def _register(self) -> None:
        with self.db.session() as session:
            session.merge(
                RunnerHeartbeat(
                    runner_id=self.runner_id,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=utcnow(),
                    last_seen_at=utcnow(),
                )
            )

    def _unregister(self) -> None:
        # A runner that stops cleanly is not "missing": only vanished runners raise alerts.
        try:
            with self.db.session() as session:
                session.execute(delete(RunnerHeartbeat).where(RunnerHeartbeat.runner_id == self.runner_id))
        except Exception as exc:
            runner_metrics.error("heartbeat", exc)
            self.log.exception("could not remove the heartbeat row")

    def _heartbeat(self, stop: threading.Event, alerts: bool = False) -> None:
        interval = self.lease_seconds * HEARTBEAT_FRACTION
        if alerts:
            self.evaluate_alerts_if_due()
        while not stop.wait(interval):
            try:
                self.beat()
            except Exception as exc:
                runner_metrics.error("heartbeat", exc)
                if is_database_unavailable(exc):
                    self.log.warning("heartbeat: database unavailable", error=first_line(exc))
                else:
                    self.log.exception("heartbeat failed")
            if alerts:
                self.evaluate_alerts_if_due()

    def evaluate_alerts_if_due(self) -> None:
        """Run the alert job (``core.ops.alerts.evaluate_alerts``, wired by
        ``core.runtime``) when the interval has passed."""
        from core.base.config import get_settings

        job = self.alert_job
        if job is None or not self._alerts_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() < self._alerts_due:
                return
            # Every COUNTERSIGN_ALERT_INTERVAL (config.ALERT_INTERVAL_SECONDS, 30 s), from the
            # long-running runner's heartbeat thread (run_until_idle leaves it to `alerts evaluate`).
            self._alerts_due = time.monotonic() + get_settings().alert_interval
            job(self.db)
        except Exception as exc:
            runner_metrics.error("alerts", exc)
            if is_database_unavailable(exc):
                self.log.warning("alert evaluation: database unavailable", error=first_line(exc))
            else:
                self.log.exception("alert evaluation failed")
        finally:
            self._alerts_lock.release()

    def beat(self) -> None:
        """Extend the leases this runner holds and mark it alive."""
        now = utcnow()
        with self._active_lock:
            active = list(self._active)
        active += self.claims.held()  # one UPDATE renews every lease this runner holds
        with self.db.session() as session:
            if active:
                session.execute(
                    update(Workflow)
                    .where(Workflow.id.in_(active), Workflow.lease_owner == self.runner_id)
                    .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
                    .execution_options(synchronize_session=False)
                )
            session.execute(
                update(RunnerHeartbeat)
                .where(RunnerHeartbeat.runner_id == self.runner_id)
                .values(last_seen_at=now, steps_executed=self.executor.steps_executed)
            )


def wait_for_database(prepare: Callable[[], T], stop: threading.Event | None = None) -> T:
    """``prepare()`` (e.g. open and migrate the database), retried with backoff
    while the database cannot be reached: a runner may start before it does
    (a machine booting, a container scheduled first). Other errors raise."""
    tries = 0
    while True:
        try:
            return prepare()
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            tries += 1
            wait = backoff_delay(DATABASE_RETRY_INITIAL, DATABASE_RETRY_MULTIPLIER, DATABASE_RETRY_MAX, tries)
            log.warning(
                "database unavailable at start; retrying", retry_in=wait, tries=tries, error=first_line(exc)
            )
            if (stop or threading.Event()).wait(wait):
                raise
