"""The Policies page and Settings › Out of office in the dashboard (AppTest, SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.approvals import delegation
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    new_app,
    no_exception,
    open_page,
    shown_text,
    sign_in,
)


def test_an_approver_sets_and_clears_their_own_out_of_office(demo_db: Database) -> None:
    at = sign_in(new_app(), "finance@example.com")
    open_page(at, "policies")
    no_exception(at)
    assert [t.value for t in at.title] == ["Policies"]
    assert not [b for b in at.button if b.key == "policies.create.submit"]  # policies:manage
    assert at.text_input(key="policies.ooo.person").disabled
    at.date_input(key="policies.ooo.until").set_value((datetime.now(UTC) + timedelta(days=3)).date())
    at.text_input(key="policies.ooo.delegate").input("manager@example.com")
    at.button(key="policies.ooo.save").click().run()
    no_exception(at)
    assert "requests go to manager@example.com" in shown_text(at)
    setting = delegation.out_of_office_of(demo_db, "finance@example.com")
    assert setting is not None and setting["delegate"] == "manager@example.com"

    at.text_input(key="policies.ooo.delegate").input("viewer@example.com")
    at.button(key="policies.ooo.save").click().run()
    assert "may not answer requests" in shown_text(at)  # refused, the setting unchanged
    setting = delegation.out_of_office_of(demo_db, "finance@example.com")
    assert setting is not None and setting["delegate"] == "manager@example.com"

    at.button(key="policies.ooo.clear").click().run()
    assert delegation.out_of_office_of(demo_db, "finance@example.com") is None


def test_an_admin_sets_someone_elses_in_settings(demo_db: Database) -> None:
    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    no_exception(at)
    at.text_input(key="settings.ooo.person").input("devops@example.com")
    at.date_input(key="settings.ooo.until").set_value((datetime.now(UTC) + timedelta(days=2)).date())
    at.text_input(key="settings.ooo.delegate").input("director@example.com")
    at.button(key="settings.ooo.save").click().run()
    no_exception(at)
    [row] = delegation.list_out_of_office(demo_db, "admin@example.com")
    assert (row["person"], row["delegate"], row["set_by"]) == (
        "devops@example.com",
        "director@example.com",
        "admin@example.com",
    )
