"""Signed approval links: claims, tampering, expiry, key rotation, URLs."""

from __future__ import annotations

import time

import pytest

from core.approvals.links import (
    DEV_SECRET,
    approval_link,
    confirm_link,
    link_secrets,
    make_link_token,
    read_link_token,
)
from core.base.config import get_settings
from core.base.errors import ConfigurationError, LinkExpired, LinkInvalid


def test_a_token_carries_approval_approver_decision_and_a_fresh_id() -> None:
    first = make_link_token("ap-1", " Bob@Example.com ", "approve")
    second = make_link_token("ap-1", "bob@example.com", "approve")
    claims = read_link_token(first)
    assert (claims.approval_id, claims.approver, claims.decision) == ("ap-1", "bob@example.com", "approve")
    assert claims.token_id != read_link_token(second).token_id
    assert read_link_token(make_link_token("ap-1", "bob@example.com")).decision is None


def test_unknown_decisions_are_refused_when_making() -> None:
    with pytest.raises(ValueError, match="decision"):
        make_link_token("ap-1", "bob@example.com", "modify")


@pytest.mark.parametrize(
    "mangle",
    [
        # A signature character away from the end: the last base64 character of a
        # SHA-256 signature carries padding bits, and changing only those decodes
        # to the same bytes.
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],
        lambda t: "x" + t,
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "a" * 5000,
    ],
)
def test_tampered_tokens_are_invalid(mangle: object) -> None:
    token = make_link_token("ap-1", "bob@example.com", "approve")
    with pytest.raises(LinkInvalid, match="not valid"):
        read_link_token(mangle(token))  # type: ignore[operator]


def test_expiry_default_explicit_and_baked_in(link_env: pytest.MonkeyPatch) -> None:
    token = make_link_token("ap-1", "bob@example.com", "approve")
    now = time.time()
    assert read_link_token(token, now=now + 6 * 86400).approval_id == "ap-1"
    with pytest.raises(LinkExpired, match="expired"):
        read_link_token(token, now=now + 8 * 86400)
    with pytest.raises(LinkExpired):
        read_link_token(token, max_age=60, now=now + 120)
    short = make_link_token("ap-1", "bob@example.com", "approve", max_age=30)
    with pytest.raises(LinkExpired):
        read_link_token(short, now=now + 120)
    with pytest.raises(LinkExpired):  # a longer reader limit does not extend a baked one
        read_link_token(short, max_age=3600, now=now + 120)
    link_env.setenv("COUNTERSIGN_LINK_MAX_AGE", "10")
    get_settings.cache_clear()
    with pytest.raises(LinkExpired):
        read_link_token(token, now=now + 60)


def test_tokens_from_the_future_are_refused() -> None:
    token = make_link_token("ap-1", "bob@example.com")
    with pytest.raises(LinkInvalid):
        read_link_token(token, now=time.time() - 3600)


def test_key_rotation_signs_with_the_newest_and_accepts_any_configured(
    link_env: pytest.MonkeyPatch,
) -> None:
    link_env.setenv("COUNTERSIGN_LINK_SECRETS", "old-secret-cccccccccccccc")
    old = make_link_token("ap-1", "bob@example.com", "reject")
    link_env.setenv("COUNTERSIGN_LINK_SECRETS", "new-secret-dddddddddddddd,old-secret-cccccccccccccc")
    assert read_link_token(old).decision == "reject"
    new = make_link_token("ap-1", "bob@example.com", "reject")
    link_env.setenv("COUNTERSIGN_LINK_SECRETS", "new-secret-dddddddddddddd")
    assert read_link_token(new).approval_id == "ap-1"
    with pytest.raises(LinkInvalid):
        read_link_token(old)  # its key was retired


def test_without_a_secret_development_uses_the_labelled_default_and_production_refuses(
    link_env: pytest.MonkeyPatch,
) -> None:
    link_env.delenv("COUNTERSIGN_LINK_SECRETS")
    assert link_secrets() == [DEV_SECRET] and "DEVELOPMENT-ONLY" in DEV_SECRET
    link_env.setenv("COUNTERSIGN_ENV", "production")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="COUNTERSIGN_LINK_SECRETS"):
        make_link_token("ap-1", "bob@example.com")


def test_urls_point_at_the_dashboard_approval_page_and_the_gateway_confirm_page() -> None:
    assert approval_link("ap-1") == "https://dash.example.com/approval?approval=ap-1"
    token = make_link_token("ap-1", "bob@example.com", "approve")
    url = confirm_link(token)
    assert url == f"https://gw.example.com/email/confirm?token={token}"
