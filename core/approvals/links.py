"""Signed, expiring, single-use approval links, and the URLs that carry them.

A link token (itsdangerous ``URLSafeTimedSerializer``, HMAC-SHA-256) names
one approval, one approver, optionally one decision and the level of the
request it was sent for, plus a random token id. Secrets come from
``COUNTERSIGN_LINK_SECRETS`` (comma-separated, newest first): tokens are
signed with the newest key and accepted with any, so keys rotate by
prepending a new one and dropping the oldest once its links have expired.

Reading a token proves it is genuine and fresh; spending it
(``consume_link_token``) inserts its id into ``used_tokens`` inside the same
transaction as the decision, so a link decides at most once and a failed
decision leaves the link unspent. A link sent for one level of a request
decides nothing once the request has moved on to another (core.approvals.once).
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.base.config import get_settings
from core.base.errors import ConfigurationError, LinkExpired, LinkInvalid, LinkUsed
from core.base.secrets import secret
from core.store.tables import ApprovalRequest, UsedToken, utcnow

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)

SECRETS_ENV = "COUNTERSIGN_LINK_SECRETS"
SALT = "countersign.approval-link.v1"
# Used only when no secret is configured and COUNTERSIGN_ENV is not
# "production"; anyone who reads this file can forge links signed with it.
DEV_SECRET = "countersign-DEVELOPMENT-ONLY-link-secret-do-not-use-in-production"
# Clocks of two servers may disagree a little.
CLOCK_SKEW_SECONDS = 60
DECISIONS = ("approve", "reject")

_warned_dev_secret = False


@dataclass(frozen=True)
class LinkClaims:
    """What a genuine, fresh link token says."""

    approval_id: str
    approver: str
    decision: str | None
    token_id: str
    issued_at: datetime | None = None
    # The level of the request the link was sent for (None: a link from before levels
    # were named, or made without one).
    level: int | None = None


def link_secrets() -> list[str]:
    """The configured link secrets, newest first.

    Raises ``ConfigurationError`` in production when none is configured.
    """
    global _warned_dev_secret
    raw = secret(SECRETS_ENV) or ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if keys:
        return keys
    if get_settings().environment.strip().lower() == "production":
        raise ConfigurationError(
            f"{SECRETS_ENV} is not set; approval links cannot be signed in production. "
            "Set it to one or more long random secrets, comma-separated, newest first."
        )
    if not _warned_dev_secret:
        _warned_dev_secret = True
        log.warning(
            "links.dev_secret",
            detail=f"{SECRETS_ENV} is not set; using the "
            "development-only link secret. Never do this in production.",
        )
    return [DEV_SECRET]


def _serializer() -> URLSafeTimedSerializer:
    # itsdangerous signs with the LAST key of the list and accepts any.
    keys = list(reversed(link_secrets()))
    return URLSafeTimedSerializer(keys, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make_link_token(
    approval_id: str,
    approver: str,
    decision: str | None = None,
    *,
    max_age: int | None = None,
    level: int | None = None,
) -> str:
    """A signed token for one approval, one approver and optionally one decision.

    ``max_age`` (seconds) bakes a shorter or longer life into the token than
    the reader's default; ``level`` is the level of the request it is sent for
    (the link decides nothing at any other).
    """
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS} or None, not {decision!r}")
    payload: dict[str, Any] = {
        "a": str(approval_id),
        "u": approver.strip().lower(),
        "j": _secrets.token_hex(16),
    }
    if decision is not None:
        payload["d"] = decision
    if max_age is not None:
        payload["m"] = int(max_age)
    if level is not None:
        payload["l"] = int(level)
    token = _serializer().dumps(payload)
    return token if isinstance(token, str) else token.decode()


def read_link_token(token: str, max_age: int | None = None, *, now: float | None = None) -> LinkClaims:
    """Check a token's signature and age; return what it claims.

    The life of a token is the ``max_age`` baked into it, else ``max_age``
    given here, else ``COUNTERSIGN_LINK_MAX_AGE``; when both are given the
    shorter wins. Raises ``LinkInvalid`` or ``LinkExpired``. Does not check
    whether it was already used (``consume_link_token`` does).
    """
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise LinkInvalid()
    try:
        payload, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise LinkInvalid() from exc
    if not isinstance(payload, dict) or not all(
        isinstance(payload.get(k), str) and payload.get(k) for k in ("a", "u", "j")
    ):
        raise LinkInvalid()
    decision = payload.get("d")
    if decision is not None and decision not in DECISIONS:
        raise LinkInvalid()
    level = payload.get("l")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool) or level < 0):
        raise LinkInvalid()
    baked = payload.get("m")
    lives = [v for v in (baked if isinstance(baked, int) else None, max_age) if v is not None]
    life = min(lives) if lives else get_settings().link_max_age
    issued = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    age = (time.time() if now is None else now) - issued.timestamp()
    if age < -CLOCK_SKEW_SECONDS:
        raise LinkInvalid()
    if age > life:
        raise LinkExpired(
            f"This approval link expired {_ago(age - life)} ago; open the approval in the dashboard instead."
        )
    return LinkClaims(
        approval_id=payload["a"],
        approver=payload["u"],
        decision=decision,
        token_id=payload["j"],
        issued_at=issued,
        level=level,
    )


def _ago(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    if seconds < 172800:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"


def consume_link_token(session: Session, claims: LinkClaims) -> None:
    """Spend a token inside the caller's transaction; a second use raises ``LinkUsed``.

    Call it in the same transaction that records the decision, so either both
    commit or neither does.
    """
    if session.get(UsedToken, claims.token_id) is not None:
        raise LinkUsed()
    session.add(UsedToken(token_id=claims.token_id, used_at=utcnow()))
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent use won the race
        raise LinkUsed() from exc


def is_link_token_used(session: Session, token_id: str) -> bool:
    return session.get(UsedToken, token_id) is not None


def link_token_spent(db: Database, token_id: str) -> bool:
    """Whether a link's token was already used (the confirmation page asks first)."""
    with db.read() as session:
        return is_link_token_used(session, token_id)


def respond_with_link(
    db: Database,
    token: str,
    decision: str | None = None,
    *,
    comment: str = "",
    data: dict[str, Any] | None = None,
    channel: str = "email",
) -> ApprovalRequest:
    """Decide an approval from a link: verify, spend and vote in one transaction.

    ``decision`` is required when the token carries none, and must match it
    when it does. A link sent for one level of the request decides nothing at
    another (``AnswerOutdated``). The engine's rules (who may answer,
    thresholds, closed requests) apply as for any other channel; on any
    refusal the token stays unspent.
    """
    from core.approvals.engine import lock_approval, record_response
    from core.approvals.once import check_issued_for

    claims = read_link_token(token)
    chosen = decision or claims.decision
    if chosen is None:
        raise LinkInvalid("This approval link does not say which decision to record.")
    if claims.decision is not None and decision is not None and decision != claims.decision:
        raise LinkInvalid(f"This approval link can only {claims.decision}, not {decision}.")
    with db.session() as session:
        approval = lock_approval(session, claims.approval_id)
        consume_link_token(session, claims)
        check_issued_for(approval, what="This link", level=claims.level)
        return record_response(
            session,
            approval,
            approver=claims.approver,
            decision=chosen,
            data=data,
            comment=comment,
            channel=channel,
        )


def _base(url: str) -> str:
    return url.rstrip("/")


def approval_link(approval_id: str) -> str:
    """The dashboard's Approval page for one request (deep link)."""
    return f"{_base(get_settings().dashboard_url)}/approval?" + urlencode({"approval": approval_id})


def confirm_link(token: str) -> str:
    """The gateway's email confirmation page for a link token (GET shows, POST decides)."""
    return f"{_base(get_settings().gateway_url)}/email/confirm?token={quote(token, safe='')}"


__all__ = [
    "LinkClaims",
    "make_link_token",
    "read_link_token",
    "consume_link_token",
    "respond_with_link",
    "approval_link",
    "confirm_link",
    "link_secrets",
]
