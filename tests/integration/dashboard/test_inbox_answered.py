"""Inbox: a request the reader has already answered at its level is not waiting for them
(not listed, not counted, no tick box); an admin's All pending shows it as answered."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.approvals.engine import ApprovalEngine
from core.store.db import Database
from tests.integration.core.test_inbox_answered import two_votes as two_votes_of
from tests.integration.dashboard.conftest import new_app, no_exception, sign_in

FINANCE = "finance@example.com"


def two_votes(db: Database, title: str, who: list[str]) -> str:
    return two_votes_of(db, title, who, requested_by="agent@example.com")


def links(at: AppTest) -> list[str]:
    return [link.proto.label for link in at.get("page_link")]


def ticks(at: AppTest) -> set[str]:
    return {
        str(c.key).removeprefix("inbox.pick.") for c in at.checkbox if str(c.key).startswith("inbox.pick.")
    }


def test_what_finance_answered_is_neither_listed_counted_nor_tickable(at: AppTest, demo_db: Database) -> None:
    engine = ApprovalEngine(demo_db)
    voted = two_votes(demo_db, "Voted on", [FINANCE, "admin@example.com", "devops@example.com"])
    open_one = two_votes(demo_db, "Not yet", [FINANCE, "admin@example.com", "devops@example.com"])
    engine.respond_to_approval(voted, FINANCE, "approve", comment="earlier")
    sign_in(at, FINANCE)
    no_exception(at)
    assert "Voted on" not in links(at) and "Not yet" in links(at)
    waiting = len(links(at))
    assert {m.proto.label: m.proto.body for m in at.get("metric")}["Waiting for you"] == str(waiting)
    assert voted not in ticks(at) and open_one in ticks(at)
    # The admin answers "Not yet" (1 of 2: still open): All pending shows it answered, no tick.
    engine.respond_to_approval(open_one, "admin@example.com", "approve")
    admin = sign_in(new_app(), "admin@example.com")
    admin.segmented_control(key="inbox.view").set_value("all").run()
    no_exception(admin)
    assert {"Voted on", "Not yet"} <= set(links(admin))
    answered = [c.value for c in admin.main.caption if "you answered, waiting for the others" in c.value]
    assert len(answered) == 1
    assert voted in ticks(admin) and open_one not in ticks(admin)
