"""Spent one-time tokens are pruned once they could no longer be presented
(core.ops.token_pruning), by the runner's maintenance beat, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.approvals.engine import ApprovalEngine
from core.approvals.links import make_link_token, respond_with_link
from core.approvals.once import once_key
from core.base.config import get_settings
from core.base.errors import LinkUsed
from core.ops.token_pruning import longest_token_life, prune_used_tokens
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import UsedToken, utcnow
from tests.integration.gateway.conftest import BOSS, waiting_workflow

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", "pruning-tests-link-secret")


def spent(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(UsedToken.token_id)).all())


def add_spent(db: Database, token_id: str, age: timedelta) -> None:
    with db.session() as session:
        session.add(UsedToken(token_id=token_id, used_at=utcnow() - age))


def test_the_runner_prunes_only_tokens_that_can_no_longer_be_used(db: Database) -> None:
    # The default link life is 7 days: a link spent 8 days ago was made at least 8 days ago.
    assert longest_token_life() == timedelta(days=7, seconds=60)
    add_spent(db, "a" * 32, 8 * DAY)  # an email link's id
    add_spent(db, once_key("slack-action", "x"), 8 * DAY)  # a Slack click's once key
    add_spent(db, "b" * 32, 6 * DAY)  # a link that could still be within its life
    add_spent(db, "c" * 32, 7 * DAY - timedelta(minutes=1))
    _, approval = waiting_workflow(db)
    token = make_link_token(approval.id, BOSS, "approve")
    respond_with_link(db, token)  # spent now
    before = spent(db)
    assert len(before) == 5

    # The maintenance beat of a runner wired as every process's (core.runtime).
    build_runner(db, dispatch_notifications=False).evaluate_alerts_if_due()

    assert spent(db) == before - {"a" * 32, once_key("slack-action", "x")}
    # The link spent just now still decides nothing more.
    with pytest.raises(LinkUsed):
        respond_with_link(db, token)
    assert len(ApprovalEngine(db).responses(approval.id)) == 1


def test_a_longer_link_life_keeps_tokens_longer(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_MAX_AGE", str(30 * 86400))
    get_settings.cache_clear()
    try:
        add_spent(db, "d" * 32, 8 * DAY)
        add_spent(db, "e" * 32, 31 * DAY)
        assert prune_used_tokens(db) == 1
        assert spent(db) == {"d" * 32}
        assert prune_used_tokens(db, now=utcnow() + 23 * DAY) == 1
        assert spent(db) == set()
    finally:
        get_settings.cache_clear()
