"""Spent one-time tokens are forgotten once nothing they stand for could be used again.

``used_tokens`` holds the id of every spent email link (core.approvals.links) and the
once key of every Slack click, Slack form and inbound webhook delivery
(core.approvals.once). A row only matters while its token could still be presented
and accepted: an email link lives ``COUNTERSIGN_LINK_MAX_AGE`` from when it
was made (so at most that long after it was spent), give or take the clock
skew links allow; a Slack or webhook request is refused by its signature
check five minutes after it was signed. A row older than the longest of
these is deleted: a replay of its token is already refused as expired.

The runner's maintenance (its heartbeat thread, after the alert rules:
``core.runtime.beat_job``) calls ``prune_used_tokens``; the index on ``used_at`` (migration 0009) keeps it
from reading the whole table. Raising ``COUNTERSIGN_LINK_MAX_AGE`` later
does not bring a pruned link back: links made before are read with the new
age, so raise it only together with new link secrets if that matters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import CursorResult, delete

from core.approvals.links import CLOCK_SKEW_SECONDS
from core.base.config import get_settings
from core.store.tables import UsedToken, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

# How long a signed Slack or webhook request is accepted (gateway.slack, gateway.webhooks_in).
SIGNED_REQUEST_WINDOW = timedelta(minutes=5)


def longest_token_life() -> timedelta:
    """The longest a one-time token stays acceptable after it was spent."""
    link_life = timedelta(seconds=get_settings().link_max_age)
    return max(link_life, SIGNED_REQUEST_WINDOW) + timedelta(seconds=CLOCK_SKEW_SECONDS)


def prune_used_tokens(db: Database, now: datetime | None = None) -> int:
    """Delete the spent tokens no one could present again; how many were deleted."""
    cutoff = (now or utcnow()) - longest_token_life()
    with db.session() as session:
        result = session.execute(delete(UsedToken).where(UsedToken.used_at < cutoff))
        deleted = cast(CursorResult[Any], result).rowcount
    if deleted:
        log.info("used tokens pruned", deleted=deleted, before=cutoff.isoformat())
    return int(deleted or 0)


__all__ = ["prune_used_tokens", "longest_token_life", "SIGNED_REQUEST_WINDOW"]
