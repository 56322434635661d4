"""The Teams section of the Agents page (AppTest over the real app.py): an
admin creates, edits, starts and deletes a team; refusals are shown plainly;
approvers start teams; viewers only read."""

from __future__ import annotations

from core.agents import profiles, teams
from core.engine import workflows as ops
from core.identity.users import add_user
from core.store.db import Database
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    plotly_specs,
    run_runner,
    sign_in,
    table_with,
)

PASSWORD = "correct horse battery"
ADMIN = "admin@example.com"


def teams_section(at: object) -> None:
    at.radio(key="agents.section").set_value("Teams").run()  # type: ignore[attr-defined]


def test_admin_creates_edits_starts_and_deletes_a_team(app_env: str) -> None:
    db = Database(app_env)
    try:
        add_user(db, ADMIN, role="admin", password=PASSWORD)
        for name in ("researcher", "writer", "editor"):
            profiles.create_profile(db, {"name": name, "model_provider": "rehearsal"}, ADMIN)
        at = sign_in(new_app(), ADMIN, PASSWORD)
        open_page(at, "agents")
        teams_section(at)
        no_exception(at)
        assert "No agent teams yet." in all_text(at)

        at.text_input(key="teams.new.name").input("desk")
        at.button(key="teams.new.save").click().run()
        assert "members: name at least one agent profile" in "\n".join(e.value for e in at.error)
        assert teams.list_teams(db) == []

        at.multiselect(key="teams.new.members").set_value(["writer", "researcher"]).run()
        at.text_input(key="teams.new.description").input("News desk")
        at.button(key="teams.new.save").click().run()
        no_exception(at)
        assert "Agent team desk created." in all_text(at)
        stored = teams.get_team(db, "desk")
        assert (stored.members, stored.description, stored.created_by) == (
            ["writer", "researcher"],
            "News desk",
            ADMIN,
        )
        assert list(table_with(at, "name", "members")["members"]) == ["writer → researcher"]
        assert at.selectbox(key="teams.choice").value == "desk"

        at.multiselect(key="teams.edit.desk.members").set_value(["researcher", "writer", "editor"]).run()
        at.multiselect(key="teams.edit.desk.approve_before").set_value(["editor"])
        at.text_input(key="teams.edit.desk.approvers").input("editor@example.com")
        at.button(key="teams.edit.desk.save").click().run()
        no_exception(at)
        assert "Agent team desk saved." in all_text(at)
        assert teams.team_dict(teams.get_team(db, "desk"))["settings"] == {
            "approve_before": ["editor"],
            "approval": {"requested_from": ["editor@example.com"]},
        }
        assert list(table_with(at, "name", "members")["members"]) == [
            "researcher → writer → [approval] editor"
        ]

        at.selectbox(key="teams.start.team").set_value("desk")
        at.text_area(key="teams.start.task").input("explain tides")
        at.button(key="teams.start.submit").click().run()
        no_exception(at)
        [workflow] = ops.list_workflows(db).rows
        assert (workflow.name, workflow.input_data, workflow.created_by) == (
            "team:desk",
            {"task": "explain tides"},
            ADMIN,
        )
        assert "Started **team:desk**." in all_text(at)
        [link] = at.get("page_link")
        assert link.proto.label == "Open its workflow"
        assert (link.proto.page, link.proto.query_string) == ("workflow", f"workflow={workflow.id}")
        run_runner(db)
        assert ops.get_workflow(db, workflow.id).status == "waiting_approval"

        # The workflow page shows the team's steps on the ordinary timeline.
        open_page(at, "workflow", workflow=workflow.id)
        no_exception(at)
        assert "team:desk" in all_text(at)
        (spec,) = plotly_specs(at)
        [bars] = [trace for trace in spec["data"] if trace["type"] == "bar"]
        assert list(bars["y"]) == ["1. researcher", "2. writer", "3. approve_editor"]
        markers = [trace["name"] for trace in spec["data"] if trace["type"] == "scatter"]
        assert "approval requested" in markers and "agent step" in markers

        # A profile that a team uses: its delete is refused, naming the team.
        open_page(at, "agents")
        at.selectbox(key="agents.choice").set_value("editor").run()
        ops.cancel_workflow(db, workflow.id, ADMIN, "enough")
        at.button(key="agents.edit.editor.delete").click().run()
        assert "is a member of agent teams: desk" in "\n".join(e.value for e in [*at.error, *at.warning])

        teams_section(at)
        at.selectbox(key="teams.choice").set_value("desk").run()
        at.button(key="teams.edit.desk.delete").click().run()
        no_exception(at)
        assert "Agent team desk deleted." in all_text(at)
        assert teams.list_teams(db) == []
    finally:
        db.dispose()


def test_an_approver_starts_a_team_and_a_viewer_only_reads(app_env: str) -> None:
    db = Database(app_env)
    try:
        add_user(db, "approver@example.com", role="approver", password=PASSWORD)
        add_user(db, "viewer@example.com", role="viewer", password=PASSWORD)
        add_user(db, ADMIN, role="admin")
        profiles.create_profile(db, {"name": "solo", "model_provider": "rehearsal"}, ADMIN)
        teams.create_team(db, {"name": "one", "members": ["solo"]}, ADMIN)

        viewer = sign_in(new_app(), "viewer@example.com", PASSWORD)
        open_page(viewer, "agents")
        teams_section(viewer)
        no_exception(viewer)
        assert list(table_with(viewer, "name", "members")["name"]) == ["one"]
        assert "Only platform admins can create, edit or delete agent teams." in all_text(viewer)
        assert not [b for b in viewer.button if str(b.key).startswith("teams.")]
        assert not [b for b in viewer.get("form_submit_button")]

        approver = sign_in(new_app(), "approver@example.com", PASSWORD)
        open_page(approver, "agents")
        teams_section(approver)
        approver.button(key="teams.start.submit").click().run()
        assert "Give the team a task" in "\n".join(e.value for e in approver.error)
        assert ops.list_workflows(db).rows == []
        approver.text_area(key="teams.start.task").input("hello")
        approver.button(key="teams.start.submit").click().run()
        no_exception(approver)
        [workflow] = ops.list_workflows(db).rows
        assert (workflow.name, workflow.created_by) == ("team:one", "approver@example.com")
        assert not [b for b in approver.button if str(b.key).startswith("teams.edit")]
        run_runner(db)
        assert ops.get_workflow(db, workflow.id).step_outputs["solo"]["result"] == "Rehearsed: hello"
    finally:
        db.dispose()
