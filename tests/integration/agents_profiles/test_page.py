"""The Agents page (AppTest over the real app.py): admins create, edit and
delete profiles, a refused delete is shown; viewers only read."""

from __future__ import annotations

from core.agents import profiles
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    sign_in,
    table_with,
)

PASSWORD = "correct horse battery"
ADMIN = "admin@example.com"


def test_admin_creates_edits_and_deletes_a_profile(app_env: str) -> None:
    db = Database(app_env)
    try:
        add_user(db, ADMIN, role="admin", password=PASSWORD)
        at = sign_in(new_app(), ADMIN, PASSWORD)
        open_page(at, "agents")
        no_exception(at)
        assert "No agent profiles yet." in all_text(at)

        at.text_input(key="agents.new.name").input("checker")
        at.text_input(key="agents.new.role").input("Order checker")
        at.selectbox(key="agents.new.provider").set_value("rehearsal")
        at.text_input(key="agents.new.tools").input("validate_order")
        at.number_input(key="agents.new.max_steps").set_value(5)
        at.text_area(key="agents.new.settings").input("{not json")
        at.button(key="agents.new.save").click().run()
        assert "Other settings are not valid JSON" in all_text(at)
        at.text_area(key="agents.new.settings").input('{"executor": "vm"}')
        at.button(key="agents.new.save").click().run()
        assert "settings.executor: must be one of" in all_text(at)
        assert profiles.list_profiles(db) == []

        at.text_area(key="agents.new.settings").input("{}")
        at.button(key="agents.new.save").click().run()
        no_exception(at)
        assert "Agent profile checker created." in all_text(at)
        stored = profiles.get_profile(db, "checker")
        assert (stored.role, stored.model_provider, stored.tools, stored.max_steps, stored.created_by) == (
            "Order checker",
            "rehearsal",
            ["validate_order"],
            5,
            ADMIN,
        )
        assert list(table_with(at, "name", "role")["name"]) == ["checker"]
        assert at.selectbox(key="agents.choice").value == "checker"

        at.text_input(key="agents.edit.checker.held_tools").input("charge_payment")
        at.button(key="agents.edit.checker.save").click().run()
        assert "Agent profile checker saved." in all_text(at)
        assert profiles.get_profile(db, "checker").held_tools == ["charge_payment"]

        workflow = ops.create_workflow(
            db,
            {
                "name": "Refund run",
                "steps": [{"name": "check", "type": "task", "task": "Check", "agent": "checker"}],
            },
            created_by=ADMIN,
        )
        at.button(key="agents.edit.checker.delete").click().run()
        assert f"Refund run ({workflow.id})" in "\n".join(e.value for e in at.error)
        assert [p.name for p in profiles.list_profiles(db)] == ["checker"]

        ops.cancel_workflow(db, workflow.id, ADMIN, "not needed")
        at.button(key="agents.edit.checker.delete").click().run()
        no_exception(at)
        assert "Agent profile checker deleted." in all_text(at)
        assert profiles.list_profiles(db) == []
    finally:
        db.dispose()


def test_a_viewer_reads_profiles_but_cannot_change_them(app_env: str) -> None:
    db = Database(app_env)
    try:
        add_user(db, "viewer@example.com", role="viewer", password=PASSWORD)
        add_user(db, ADMIN, role="admin")
        profiles.create_profile(db, {"name": "writer", "model_id": "llama3.1"}, ADMIN)
        at = sign_in(new_app(), "viewer@example.com", PASSWORD)
        open_page(at, "agents")
        no_exception(at)
        assert list(table_with(at, "name", "model")["model"]) == ["- / llama3.1"]
        assert "Only platform admins can create, edit or delete agent profiles." in all_text(at)
        assert not [b for b in at.button if str(b.key).startswith("agents.")]
    finally:
        db.dispose()
