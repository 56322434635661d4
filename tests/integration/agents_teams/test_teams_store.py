"""The agent team store on SQLite and PostgreSQL: validated writes, nothing
partial, audit events, and profiles that teams use cannot be deleted."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from core.agents import profiles, teams
from core.base.errors import (
    AgentProfileInUse,
    AgentTeamExists,
    AgentTeamNotFound,
    InvalidAgentTeam,
    TeamTaskMissing,
)
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import Workflow, WorkflowEvent
from tests.helpers.engine import wait_until

ADMIN = "admin@example.com"


@pytest.fixture
def three_profiles(db: Database) -> Database:
    # Profiles and teams are a platform admin's (agents:manage); a service starts team runs.
    for email, role in ((ADMIN, "admin"), ("ops@example.com", "admin"), ("requester@example.com", "service")):
        add_user(db, email, role=role)
    for name in ("researcher", "writer", "editor"):
        profiles.create_profile(db, {"name": name, "model_provider": "rehearsal"}, ADMIN)
    return db


def team_events(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as session:
        rows = session.scalars(
            select(WorkflowEvent)
            .where(WorkflowEvent.event_type.like("agent_team.%"))
            .order_by(WorkflowEvent.id)
        )
        return [(e.event_type, e.actor, e.data["team"]) for e in rows]


def test_create_list_show_edit_delete(three_profiles: Database) -> None:
    db = three_profiles
    row = teams.create_team(
        db, {"name": "desk", "description": "News", "members": ["writer", "researcher"]}, ADMIN
    )
    assert (row.name, row.members, row.created_by) == ("desk", ["writer", "researcher"], ADMIN)
    teams.create_team(db, {"name": "alpha", "members": ["editor"]}, ADMIN)
    assert [t.name for t in teams.list_teams(db)] == ["alpha", "desk"]

    teams.update_team(
        db,
        "desk",
        {"members": ["researcher", "writer", "editor"], "settings": {"approve_before": ["editor"]}},
        "ops@example.com",
    )
    stored = teams.team_dict(teams.get_team(db, "desk"))
    assert (stored["members"], stored["settings"], stored["description"]) == (
        ["researcher", "writer", "editor"],
        {"approve_before": ["editor"], "approval": {}},
        "News",
    )

    teams.delete_team(db, "alpha", ADMIN)
    assert [t.name for t in teams.list_teams(db)] == ["desk"]
    with pytest.raises(AgentTeamNotFound, match="No agent team is named 'alpha'."):
        teams.get_team(db, "alpha")
    assert team_events(db) == [
        ("agent_team.created", ADMIN, "desk"),
        ("agent_team.created", ADMIN, "alpha"),
        ("agent_team.updated", "ops@example.com", "desk"),
        ("agent_team.deleted", ADMIN, "alpha"),
    ]


def test_refusals_write_nothing(three_profiles: Database) -> None:
    db = three_profiles
    with pytest.raises(InvalidAgentTeam) as missing:
        teams.create_team(db, {"name": "desk", "members": ["researcher", "ghost", "spectre"]}, ADMIN)
    assert missing.value.problems == ["members: no agent profile is named 'ghost', 'spectre'"]
    with pytest.raises(InvalidAgentTeam, match="members: name at least one agent profile"):
        teams.create_team(db, {"name": "desk", "members": []}, ADMIN)
    assert teams.list_teams(db) == [] and team_events(db) == []

    teams.create_team(db, {"name": "desk", "members": ["researcher"]}, ADMIN)
    with pytest.raises(AgentTeamExists, match="An agent team named 'desk' already exists."):
        teams.create_team(db, {"name": "desk", "members": ["writer"]}, ADMIN)
    with pytest.raises(InvalidAgentTeam, match="no agent profile is named 'ghost'"):
        teams.update_team(db, "desk", {"members": ["writer", "ghost"]}, ADMIN)
    with pytest.raises(InvalidAgentTeam, match=r"settings.approve_before\[0\]: 'editor' is not"):
        teams.update_team(db, "desk", {"settings": {"approve_before": ["editor"]}}, ADMIN)
    with pytest.raises(InvalidAgentTeam, match="name: a team cannot be renamed"):
        teams.update_team(db, "desk", {"name": "other"}, ADMIN)
    with pytest.raises(InvalidAgentTeam, match="colour: unknown field"):
        teams.update_team(db, "desk", {"colour": "red"}, ADMIN)
    with pytest.raises(AgentTeamNotFound):
        teams.update_team(db, "nobody", {"members": ["writer"]}, ADMIN)
    with pytest.raises(AgentTeamNotFound):
        teams.delete_team(db, "nobody", ADMIN)
    assert teams.get_team(db, "desk").members == ["researcher"]
    assert team_events(db) == [("agent_team.created", ADMIN, "desk")]


def test_a_profile_in_a_team_cannot_be_deleted(three_profiles: Database) -> None:
    db = three_profiles
    teams.create_team(db, {"name": "desk", "members": ["researcher", "writer"]}, ADMIN)
    teams.create_team(db, {"name": "bureau", "members": ["writer"]}, ADMIN)
    with pytest.raises(AgentProfileInUse) as refused:
        profiles.delete_profile(db, "writer", ADMIN)
    assert str(refused.value) == (
        "Agent profile 'writer' is a member of agent teams: bureau, desk. Remove it from them first."
    )
    assert [p.name for p in profiles.list_profiles(db)] == ["editor", "researcher", "writer"]

    teams.delete_team(db, "bureau", ADMIN)
    teams.update_team(db, "desk", {"members": ["researcher"]}, ADMIN)
    profiles.delete_profile(db, "writer", ADMIN)
    assert [p.name for p in profiles.list_profiles(db)] == ["editor", "researcher"]


def test_start_makes_an_ordinary_workflow(three_profiles: Database) -> None:
    db = three_profiles
    teams.create_team(db, {"name": "desk", "description": "News", "members": ["researcher", "writer"]}, ADMIN)
    with pytest.raises(TeamTaskMissing):
        teams.start_team(db, "desk", "   ", ADMIN)
    with pytest.raises(AgentTeamNotFound):
        teams.start_team(db, "nobody", "tides", ADMIN)
    with db.read() as session:
        assert session.scalars(select(Workflow)).all() == []

    workflow = teams.start_team(db, "desk", " tides ", "requester@example.com")
    assert (workflow.name, workflow.description, workflow.created_by, workflow.input_data) == (
        "team:desk",
        "News",
        "requester@example.com",
        {"task": "tides"},
    )
    assert workflow.definition["metadata"] == {"team": "desk", "members": ["researcher", "writer"]}
    assert [(s["name"], s["agent"]) for s in workflow.definition["steps"]] == [
        ("researcher", "researcher"),
        ("writer", "writer"),
    ]
    # While it runs, its profiles are in use by a workflow as well as by the team.
    teams.delete_team(db, "desk", ADMIN)
    with pytest.raises(AgentProfileInUse, match=r"team:desk \("):
        profiles.delete_profile(db, "writer", ADMIN)


def test_a_profile_deleted_while_a_team_is_saved_is_not_left_in_it(pg_db: Database) -> None:
    """PostgreSQL: a team's write waits for a profile's lock; the profile is gone when it gets it."""
    db = pg_db
    add_user(db, ADMIN, role="admin")
    for name in ("researcher", "writer"):
        profiles.create_profile(db, {"name": name, "model_provider": "rehearsal"}, ADMIN)
    refused: list[BaseException] = []
    with db.engine.connect() as holder:
        holder.execute(text("SELECT name FROM agent_profiles WHERE name = 'writer' FOR UPDATE"))
        saving = threading.Thread(target=lambda: _create_or_record(db, refused))
        saving.start()
        wait_until(lambda: _waiting_for_a_lock(db), what="the team write waits for the lock")
        holder.execute(text("DELETE FROM agent_profiles WHERE name = 'writer'"))
        holder.commit()
    saving.join(timeout=30)
    assert [str(e) for e in refused] == [
        "The agent team is invalid: members: no agent profile is named 'writer'"
    ]
    assert teams.list_teams(db) == []


def _create_or_record(db: Database, refused: list[BaseException]) -> None:
    try:
        teams.create_team(db, {"name": "desk", "members": ["researcher", "writer"]}, ADMIN)
    except InvalidAgentTeam as exc:
        refused.append(exc)


def _waiting_for_a_lock(db: Database) -> bool:
    with db.engine.connect() as probe:
        return bool(
            probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%agent_profiles%'"
                )
            ).scalar()
        )


def test_a_tenants_user_cannot_change_the_shared_profiles_and_teams(three_profiles: Database) -> None:
    from core.base.errors import NotAuthorized
    from core.identity.users import add_user
    from core.tenants import registry as tenants

    db = three_profiles
    tenants.create_tenant(db, "acme")
    add_user(db, "ann@acme.test", role="admin", tenant="acme")
    teams.create_team(db, {"name": "desk", "members": ["researcher", "writer"]}, ADMIN)
    refusals = [
        lambda: profiles.create_profile(db, {"name": "spy", "model_provider": "rehearsal"}, "ann@acme.test"),
        lambda: profiles.update_profile(db, "writer", {"role": "spy"}, "ann@acme.test"),
        lambda: profiles.delete_profile(db, "editor", "ann@acme.test"),
        lambda: teams.create_team(db, {"name": "spies", "members": ["writer"]}, "ann@acme.test"),
        lambda: teams.update_team(db, "desk", {"members": ["writer"]}, "ann@acme.test"),
        lambda: teams.delete_team(db, "desk", "ann@acme.test"),
    ]
    for attempt in refusals:
        with pytest.raises(NotAuthorized, match="may not agents:manage .*platform users only"):
            attempt()
    assert [p.name for p in profiles.list_profiles(db)] == ["editor", "researcher", "writer"]
    assert profiles.get_profile(db, "writer").role == ""
    assert teams.get_team(db, "desk").members == ["researcher", "writer"]
