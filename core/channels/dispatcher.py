"""The dispatcher: delivers the ``notifications`` outbox.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED
LIMIT n) RETURNING id`` that pushes the rows' ``next_attempt_at`` a claim
period ahead, so any number of dispatchers in any number of processes share
the outbox, and a row whose dispatcher died becomes due again by itself.

A row is marked ``sent`` only after its channel accepted the message: a
crash in between sends it again (the message carries the notification id as
its stable id: ``Message-ID``, ``webhook-id``, Slack metadata), it is never
lost. Failures are retried with exponential backoff (tenacity's
``wait_exponential_jitter``) until the last attempt, after which the row is
``dead`` until someone calls ``retry_notification``. Each channel has a
circuit breaker: after ``breaker_threshold`` consecutive failures the
channel's rows are left alone for ``breaker_cooldown`` seconds, so a dead
mail server neither burns every email's attempts nor delays Slack.

The dispatcher thread wakes at once when this process commits new outbox
rows (``outbox_signal``) and otherwise polls every
``COUNTERSIGN_DISPATCH_POLL_SECONDS`` (default 1 s) for rows written by
other processes and for retries coming due.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select, update
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from core.base.errors import NotificationNotFound
from core.base.retry import first_line, is_database_unavailable
from core.channels.base import (
    Channel,
    Deferred,
    Delivery,
    DeliveryFailure,
    PermanentFailure,
    TemporaryFailure,
)
from core.channels.notifications import (
    addresses_of,
    approval_facts,
    notifications_for,
    retry_notification,
)
from core.channels.timers import is_original, updates_a_message
from core.identity.account_state import disabled_among
from core.identity.groups import outside_tenant
from core.outbox.writer import outbox_signal
from core.records import rows as store
from core.store.tables import ApprovalRequest, Notification, utcnow
from core.telemetry import tracing

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

log = structlog.get_logger(__name__)

ACTOR = "system:dispatcher"
DUE_STATUSES = ("pending", "failed")
FINAL_STATUSES = ("sent", "dead")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class DeliveryPolicy:
    """Retry, backoff and breaker knobs (``COUNTERSIGN_NOTIFY_*``, ``COUNTERSIGN_BREAKER_*``)."""

    max_attempts: int = 8
    backoff_initial: float = 5.0
    backoff_max: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 60.0
    poll_seconds: float = 1.0
    batch_size: int = 20
    # A claimed row is due again after this long if its dispatcher died.
    claim_seconds: float = 120.0
    # How soon a deferred row (e.g. an update waiting for its message) is tried again.
    defer_seconds: float = 2.0

    @classmethod
    def from_settings(cls) -> DeliveryPolicy:
        from core.base.config import get_settings

        s = get_settings()
        return cls(
            max_attempts=max(1, s.notify_max_attempts),
            backoff_initial=s.notify_backoff_initial,
            backoff_max=s.notify_backoff_max,
            breaker_threshold=max(1, s.breaker_threshold),
            breaker_cooldown=s.breaker_cooldown,
            poll_seconds=s.dispatch_poll_seconds,
            claim_seconds=s.dispatch_claim_seconds,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        strategy = wait_exponential_jitter(
            multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial / 4
        )
        state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = max(1, attempt)
        return float(strategy(state))


class CircuitBreaker:
    """Per-channel breaker: opens after consecutive failures, half-opens after a cool-down."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def allows(self, channel: str) -> bool:
        with self._lock:
            return time.monotonic() >= self._open_until.get(channel, 0.0)

    def open_channels(self) -> dict[str, float]:
        """Open channels and the seconds until each may be tried again."""
        now = time.monotonic()
        with self._lock:
            return {c: until - now for c, until in self._open_until.items() if until > now}

    def failures(self, channel: str) -> int:
        """Consecutive failures of a channel so far."""
        with self._lock:
            return self._failures.get(channel, 0)

    def success(self, channel: str) -> None:
        with self._lock:
            self._failures.pop(channel, None)
            self._open_until.pop(channel, None)

    def failure(self, channel: str) -> None:
        with self._lock:
            count = self._failures.get(channel, 0) + 1
            self._failures[channel] = count
            if count >= self.threshold:
                self._open_until[channel] = time.monotonic() + self.cooldown
                log.warning("channel circuit open", channel=channel, failures=count, cooldown=self.cooldown)


class Dispatcher:
    """Delivers due outbox rows through their channels."""

    def __init__(
        self,
        db: Database,
        *,
        policy: DeliveryPolicy | None = None,
        channels: dict[str, Channel] | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or DeliveryPolicy.from_settings()
        self.breaker = CircuitBreaker(self.policy.breaker_threshold, self.policy.breaker_cooldown)
        self._fixed_channels = channels
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self._count_lock = threading.Lock()

    # -- claiming ----------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[str]:
        """Take up to ``limit`` due rows for this dispatcher; their ids."""
        return [notification_id for notification_id, _channel in self._claim(limit)]

    def _claim(self, limit: int | None = None) -> list[tuple[str, str]]:
        now = utcnow()
        due = select(Notification.id).where(
            Notification.status.in_(DUE_STATUSES), Notification.next_attempt_at <= now
        )
        blocked = list(self.breaker.open_channels())
        if blocked:
            due = due.where(Notification.channel.not_in(blocked))
        due = due.order_by(Notification.next_attempt_at).limit(limit or self.policy.batch_size)
        due = due.with_for_update(skip_locked=True)
        with self.db.session() as session:
            claimed = session.execute(
                update(Notification)
                .where(Notification.id.in_(due))
                .values(next_attempt_at=now + timedelta(seconds=self.policy.claim_seconds))
                .returning(Notification.id, Notification.channel)
                .execution_options(synchronize_session=False)
            ).all()
        return [(row[0], row[1]) for row in claimed]

    # -- delivering ----------------------------------------------------------------

    def channels(self, session: Session) -> dict[str, Channel]:
        if self._fixed_channels is not None:
            return self._fixed_channels
        from core.channels.registry import build_channels

        return build_channels(session)

    def dispatch_once(self) -> int:
        """Claim one batch and deliver it; how many rows were handled.

        Each channel's rows go out in their own thread, so a mail server that
        hangs until its timeout does not hold up Slack in the same batch.
        """
        claimed = self._claim()
        if not claimed:
            return 0
        with self.db.read() as session:
            channels = self.channels(session)
        by_channel: dict[str, list[str]] = {}
        for notification_id, channel in claimed:
            by_channel.setdefault(channel, []).append(notification_id)
        if len(by_channel) == 1:
            self._deliver_all(next(iter(by_channel.values())), channels)
        else:
            with ThreadPoolExecutor(
                max_workers=len(by_channel), thread_name_prefix="countersign-deliver"
            ) as pool:
                for ids in by_channel.values():
                    pool.submit(self._deliver_all, ids, channels)
        return len(claimed)

    def _deliver_all(self, ids: list[str], channels: dict[str, Channel]) -> None:
        for notification_id in ids:
            try:
                self.deliver(notification_id, channels)
            except Exception:
                # A bug or a database outage: the claim lapses and the row is retried.
                log.exception("delivery failed unexpectedly", notification_id=notification_id)

    def deliver(self, notification_id: str, channels: dict[str, Channel] | None = None) -> str:
        """Deliver one claimed row; returns its new status (or ``deferred``)."""
        # Log lines of this delivery (the channel's included) name it and its approval.
        with structlog.contextvars.bound_contextvars(notification_id=notification_id):
            try:
                delivery, refused = self._prepare(notification_id)
            except NotificationNotFound:
                return "missing"
            facts = delivery.approval
            about = (
                {"approval_id": facts.id, "workflow_id": facts.workflow_id, "step": facts.step_name}
                if facts
                else {}
            )
            with structlog.contextvars.bound_contextvars(
                channel=delivery.channel, **{k: v for k, v in about.items() if v is not None}
            ):
                with tracing.delivery_span(
                    self.db, notification_id, delivery.channel, delivery.kind
                ) as traced:
                    outcome = self._deliver(notification_id, delivery, refused, channels)
                    if traced is not None:  # sent, failed, dead or deferred
                        traced.set_attribute("countersign.outcome", outcome)
                    return outcome

    def _deliver(
        self,
        notification_id: str,
        delivery: Delivery,
        refused: str | None,
        channels: dict[str, Channel] | None,
    ) -> str:
        if channels is None:
            with self.db.read() as session:
                channels = self.channels(session)
        channel = channels.get(delivery.channel)
        if not self.breaker.allows(delivery.channel):
            wait = self.breaker.open_channels().get(delivery.channel, self.policy.breaker_cooldown)
            self._release(notification_id, wait)
            return "deferred"
        try:
            if channel is None:
                raise PermanentFailure(f"There is no {delivery.channel!r} channel.")
            if refused is not None:  # the channel is off, or the recipient's account
                raise PermanentFailure(refused)
            if updates_a_message(delivery.kind):  # a decision's or a reminder's update
                self._check_originals_final(delivery)
            ref = channel.send(delivery)
        except Deferred as exc:
            log.info("delivery deferred", notification_id=notification_id, reason=str(exc))
            self._release(notification_id, self.policy.defer_seconds)
            return "deferred"
        except DeliveryFailure as exc:
            if isinstance(exc, TemporaryFailure):
                self.breaker.failure(delivery.channel)
            return self._record_failure(delivery, str(exc), permanent=isinstance(exc, PermanentFailure))
        except Exception as exc:  # an SDK raising something unexpected: retry it
            self.breaker.failure(delivery.channel)
            log.exception("channel raised", channel=delivery.channel, notification_id=notification_id)
            return self._record_failure(delivery, f"{type(exc).__name__}: {exc}", permanent=False)
        self.breaker.success(delivery.channel)
        self._record_sent(delivery, ref)
        return "sent"

    def _prepare(self, notification_id: str) -> tuple[Delivery, str | None]:
        """The row as a delivery, and why it must not be sent (None: send it)."""
        from core.outbox.settings import channel_settings

        with self.db.read() as session:
            row = session.get(Notification, notification_id)
            if row is None:
                raise NotificationNotFound()
            enabled, _settings = channel_settings(session, row.channel)
            approval = approval_facts(session, row.approval_id) if row.approval_id else None
            prior: list[dict[str, Any]] = []
            if updates_a_message(row.kind):
                prior = [
                    dict(ref)
                    for ref in session.scalars(
                        select(Notification.external_ref).where(
                            Notification.approval_id == row.approval_id,
                            Notification.channel == row.channel,
                            Notification.recipient == row.recipient,
                            is_original(),
                            Notification.status == "sent",
                        )
                    ).all()
                    if ref
                ]
            # A group's members in other tenants are not mailed (core.store.tenancy).
            tenant = (
                session.scalar(select(ApprovalRequest.tenant).where(ApprovalRequest.id == row.approval_id))
                if row.approval_id
                else None
            )
            addresses = addresses_of(session, row.recipient, tenant=tenant) if row.channel == "email" else []
            # Queued before its account was disabled: not delivered (core.identity.account_state).
            recipient_disabled = bool(disabled_among(session, [row.recipient]))
            # A person of another tenant cannot see the request: never told about it.
            recipient_foreign = bool(row.approval_id) and bool(
                outside_tenant(session, [row.recipient], tenant)
            )
            delivery = Delivery(
                notification_id=row.id,
                kind=row.kind,
                channel=row.channel,
                recipient=row.recipient,
                attempt=row.attempts + 1,
                payload=dict(row.payload or {}),
                approval=approval,
                prior_refs=prior,
                addresses=addresses,
            )
        if not enabled:
            return delivery, f"The {row.channel} channel is disabled in Settings."
        if recipient_disabled:
            return delivery, f"{row.recipient}'s account is disabled; nothing is sent to it."
        if recipient_foreign:
            return delivery, f"{row.recipient} is not in this request's tenant; nothing is sent to them."
        return delivery, None

    def _check_originals_final(self, delivery: Delivery) -> None:
        """An update waits until the messages it updates were sent (or died)."""
        with self.db.read() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(
                    Notification.approval_id == (delivery.approval.id if delivery.approval else None),
                    Notification.channel == delivery.channel,
                    Notification.recipient == delivery.recipient,
                    is_original(),
                    Notification.status.in_(DUE_STATUSES),
                )
            )
        if waiting:
            raise Deferred("waiting for the request message to be sent before updating it")

    def _release(self, notification_id: str, seconds: float) -> None:
        """Hand a claimed row back, due in ``seconds``, without counting an attempt."""
        values: dict[str, Any] = {"next_attempt_at": utcnow() + timedelta(seconds=max(seconds, 0.0))}
        with self.db.session() as session:
            session.execute(
                update(Notification)
                .where(Notification.id == notification_id, Notification.status.in_(DUE_STATUSES))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def _record_sent(self, delivery: Delivery, ref: dict[str, Any]) -> None:
        now = utcnow()
        with self.db.session() as session:
            row = session.get(Notification, delivery.notification_id, with_for_update=True)
            if row is None or row.status in FINAL_STATUSES:
                return
            row.status = "sent"
            row.sent_at = now
            row.attempts += 1
            row.last_error = None
            row.external_ref = {**(row.external_ref or {}), **ref}
            row.updated_at = now
        with self._count_lock:
            self.delivered += 1
        log.info(
            "notification sent",
            notification_id=delivery.notification_id,
            channel=delivery.channel,
            kind=delivery.kind,
        )

    def _record_failure(self, delivery: Delivery, error: str, *, permanent: bool) -> str:
        now = utcnow()
        with self.db.session() as session:
            row = session.get(Notification, delivery.notification_id, with_for_update=True)
            if row is None or row.status in FINAL_STATUSES:
                return row.status if row else "missing"
            row.attempts += 1
            row.last_error = error[:MAX_ERROR_CHARS]
            row.updated_at = now
            if permanent or row.attempts >= self.policy.max_attempts:
                row.status = "dead"
                store.append_event(
                    session,
                    "notification.dead",
                    ACTOR,
                    workflow_id=row.workflow_id,
                    approval_id=row.approval_id,
                    data={
                        "notification_id": row.id,
                        "channel": row.channel,
                        "kind": row.kind,
                        "recipient": row.recipient,
                        "attempts": row.attempts,
                        "error": row.last_error,
                    },
                )
                log.warning(
                    "notification dead",
                    notification_id=row.id,
                    channel=row.channel,
                    attempts=row.attempts,
                    error=row.last_error,
                )
            else:
                row.status = "failed"
                row.next_attempt_at = now + timedelta(seconds=self.policy.backoff(row.attempts))
            return row.status

    # -- loops -------------------------------------------------------------------

    def dispatch_until_idle(self, *, wait_for_retries: bool = True, max_seconds: float = 60.0) -> int:
        """Deliver until nothing is due; returns how many rows were sent.

        With ``wait_for_retries`` it also waits for retries (and open breakers)
        coming due before ``max_seconds`` have passed. For tests and the CLI.
        """
        deadline = time.monotonic() + max_seconds
        start = self.delivered
        while time.monotonic() < deadline:
            if self.dispatch_once():
                continue
            if not wait_for_retries:
                break
            due = self._next_wake()
            if due is None:
                break
            wait = min(due, deadline - time.monotonic())
            if wait > 0:
                self._stop.wait(wait)
        return self.delivered - start

    def _next_wake(self) -> float | None:
        """Seconds until a row or a breaker comes due, or None when nothing is waiting."""
        with self.db.read() as session:
            rows = session.execute(
                select(Notification.channel, func.min(Notification.next_attempt_at))
                .where(Notification.status.in_(DUE_STATUSES))
                .group_by(Notification.channel)
            ).all()
        if not rows:
            return None
        blocked = self.breaker.open_channels()
        now = utcnow()
        waits = [
            max((due - now).total_seconds(), blocked.get(channel, 0.0), 0.0) + 0.01 for channel, due in rows
        ]
        return min(waits)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="countersign-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        outbox_signal.fire()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = outbox_signal.generation
            wait = self.policy.poll_seconds
            try:
                if self.dispatch_once():
                    continue
                due = self._next_wake()
                if due is not None:
                    wait = min(wait, due)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    log.exception("dispatcher loop error; retrying")
                else:  # a restart or outage: one plain line per poll, not a traceback
                    log.warning("dispatcher: database unavailable; retrying", error=first_line(exc))
            outbox_signal.wait_for_change(seen, wait)


__all__ = ["Dispatcher", "DeliveryPolicy", "CircuitBreaker", "retry_notification", "notifications_for"]
