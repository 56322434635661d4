"""Signed session tokens shared by the dashboard and the gateway."""

from __future__ import annotations

import pytest

from core.identity import browser_sessions as sessions


def test_a_token_names_its_email() -> None:
    token = sessions.make_session_token("alice@example.com")
    assert sessions.read_session_token(token) == "alice@example.com"


@pytest.mark.parametrize("value", [None, "", "garbage", "eyJlbWFpbCI6ImV2ZUBleGFtcGxlLmNvbSJ9.x.y"])
def test_missing_or_forged_tokens_name_nobody(value: str | None) -> None:
    assert sessions.read_session_token(value) is None


def test_a_tampered_token_names_nobody() -> None:
    token = sessions.make_session_token("alice@example.com")
    payload, rest = token.split(".", 1)
    forged = sessions.make_session_token("mallory@example.com").split(".", 1)[0] + "." + rest
    assert sessions.read_session_token(forged) is None
    assert payload != forged.split(".", 1)[0]


def test_an_old_token_names_nobody() -> None:
    token = sessions.make_session_token("alice@example.com")
    assert sessions.read_session_token(token, max_age=-1) is None


def test_another_key_does_not_accept_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_SESSION_SECRET", "key-one")
    token = sessions.make_session_token("alice@example.com")
    monkeypatch.setenv("COUNTERSIGN_SESSION_SECRET", "key-two")
    assert sessions.read_session_token(token) is None
