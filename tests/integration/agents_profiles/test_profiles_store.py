"""Agent profiles in the database (SQLite and PostgreSQL): CRUD, validation,
audit events, the refusal to delete a profile in use, and a task step that
runs with a stored profile."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from core.agents import profiles
from core.approvals.engine import ApprovalEngine
from core.base.errors import (
    AgentProfileExists,
    AgentProfileInUse,
    AgentProfileNotFound,
    ConfigurationError,
    InvalidAgentProfile,
)
from core.definitions.agents import resolve_spec
from core.engine import workflows as ops
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import AgentProfile, Base, WorkflowEvent
from tests.helpers.engine import events, open_approval_of, status


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions): profiles are a platform admin's."""
    add_user(db, ADMIN, role="admin")
    add_user(db, "ops@example.com", role="admin")


ADMIN = "admin@example.com"
FINANCE = "finance@example.com"
CHECKER: dict[str, Any] = {
    "name": "checker",
    "role": "Order checker",
    "instructions": "Check before charging.",
    "agent_type": "tool_calling",
    "model_provider": "rehearsal",
    "tools": ["validate_order"],
    "held_tools": ["validate_order"],
    "max_steps": 7,
    "settings": {"approval": {"requested_from": FINANCE}},
}


def uses(profile: str, name: str = "Uses a profile") -> dict[str, Any]:
    return {
        "name": name,
        "steps": [
            {
                "name": "check",
                "type": "task",
                "task": "Check order O-1",
                "agent": profile,
                "plan": [{"tool": "validate_order", "args": {"order_id": "O-1"}}],
            }
        ],
    }


def profile_events(db: Database) -> list[WorkflowEvent]:
    with db.read() as session:
        return list(
            session.scalars(
                select(WorkflowEvent)
                .where(WorkflowEvent.event_type.like("agent_profile.%"))
                .order_by(WorkflowEvent.id)
            )
        )


def test_the_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_create_list_show_edit_delete_with_audit_events(db: Database) -> None:
    profiles.create_profile(db, CHECKER, ADMIN)
    profiles.create_profile(db, {"name": "writer", "model_id": "llama3.1"}, ADMIN)
    assert [p.name for p in profiles.list_profiles(db)] == ["checker", "writer"]
    shown = profiles.profile_dict(profiles.get_profile(db, "checker"))
    assert {k: shown[k] for k in CHECKER} == CHECKER
    assert shown["created_by"] == ADMIN

    profiles.update_profile(db, "checker", {"max_steps": 3, "tools": []}, "ops@example.com")
    changed = profiles.get_profile(db, "checker")
    assert (changed.max_steps, changed.tools, changed.role) == (3, [], "Order checker")

    profiles.delete_profile(db, "writer", ADMIN)
    assert [p.name for p in profiles.list_profiles(db)] == ["checker"]
    with pytest.raises(AgentProfileNotFound, match="'writer'"):
        profiles.get_profile(db, "writer")

    trail = [(e.event_type, e.actor, e.data["profile"], e.workflow_id) for e in profile_events(db)]
    assert trail == [
        ("agent_profile.created", ADMIN, "checker", None),
        ("agent_profile.created", ADMIN, "writer", None),
        ("agent_profile.updated", "ops@example.com", "checker", None),
        ("agent_profile.deleted", ADMIN, "writer", None),
    ]
    updated = profile_events(db)[2]
    assert (updated.before or {})["max_steps"] == 7 and (updated.after or {})["max_steps"] == 3


def test_a_bad_profile_is_refused_with_named_paths_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(InvalidAgentProfile) as bad:
        profiles.create_profile(
            db, {**CHECKER, "max_steps": 0, "agent_type": "robot", "settings": {"executor": "vm"}}, ADMIN
        )
    message = str(bad.value)
    assert "agent_type: must be one of 'tool_calling' or 'code'" in message
    assert "max_steps: Input should be greater than or equal to 1" in message
    assert "settings.executor: must be one of" in message
    with pytest.raises(InvalidAgentProfile, match="held_tools: 'not a tool' is not a valid tool name"):
        profiles.create_profile(db, {**CHECKER, "held_tools": ["not a tool"]}, ADMIN)
    with pytest.raises(InvalidAgentProfile, match=r"settings.model.api_key: unknown field"):
        profiles.create_profile(db, {**CHECKER, "settings": {"model": {"api_key": "sk"}}}, ADMIN)
    with pytest.raises(InvalidAgentProfile, match="settings.approval: timeout: must be a duration"):
        profiles.create_profile(db, {**CHECKER, "settings": {"approval": {"timeout": "soon"}}}, ADMIN)
    with pytest.raises(InvalidAgentProfile, match="name: use letters"):
        profiles.create_profile(db, {**CHECKER, "name": "a/b"}, ADMIN)
    assert profiles.list_profiles(db) == [] and profile_events(db) == []

    profiles.create_profile(db, CHECKER, ADMIN)
    with pytest.raises(AgentProfileExists, match="'checker' already exists"):
        profiles.create_profile(db, CHECKER, ADMIN)
    with pytest.raises(InvalidAgentProfile, match="model_provider: must be one of"):
        profiles.update_profile(db, "checker", {"model_provider": "skynet"}, ADMIN)
    with pytest.raises(InvalidAgentProfile, match="cannot be renamed"):
        profiles.update_profile(db, "checker", {"name": "other"}, ADMIN)
    assert profiles.get_profile(db, "checker").model_provider == "rehearsal"
    assert len(profile_events(db)) == 1


def test_deleting_a_profile_in_use_is_refused_naming_the_workflows(db: Database) -> None:
    profiles.create_profile(db, CHECKER, ADMIN)
    first = ops.create_workflow(db, uses("checker", "Refund run A"), created_by=ADMIN)
    second = ops.create_workflow(db, uses("checker", "Refund run B"), created_by=ADMIN)
    ops.create_workflow(db, uses("someone-else", "Unrelated"), created_by=ADMIN)
    with pytest.raises(AgentProfileInUse) as refused:
        profiles.delete_profile(db, "checker", ADMIN)
    message = str(refused.value)
    assert f"Refund run A ({first.id})" in message and f"Refund run B ({second.id})" in message
    assert "Unrelated" not in message and "not completed, cancelled or failed" in message
    assert [p.name for p in profiles.list_profiles(db)] == ["checker"]

    # Finished workflows no longer hold the profile.
    ops.cancel_workflow(db, first.id, ADMIN, "done with it")
    with pytest.raises(AgentProfileInUse, match="Refund run B") as still:
        profiles.delete_profile(db, "checker", ADMIN)
    assert "Refund run A" not in str(still.value)
    ops.cancel_workflow(db, second.id, ADMIN, "done with it")
    profiles.delete_profile(db, "checker", ADMIN)
    assert profiles.list_profiles(db) == []


def test_a_task_step_naming_a_stored_profile_runs_with_it(db: Database) -> None:
    profiles.create_profile(db, CHECKER, ADMIN)
    spec = resolve_spec("checker", profiles.stored_profiles(db))
    assert spec.instructions == "Your role: Order checker.\nCheck before charging."
    with pytest.raises(ConfigurationError, match="No agent profile is named 'nobody'"):
        resolve_spec("nobody", profiles.stored_profiles(db))

    workflow_id = ops.create_workflow(db, uses("checker"), created_by=ADMIN).id
    build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)
    # The profile holds validate_order and names its approver: the run waits for finance.
    assert status(db, workflow_id) == "waiting_approval"
    started = events(db, workflow_id, "agent.started")[0].data
    assert (started["held_tools"], started["max_steps"], started["model"]) == (
        ["validate_order"],
        7,
        "rehearsal (no LLM)",
    )
    request = open_approval_of(db, workflow_id)
    assert request.approvers == [FINANCE]
    ApprovalEngine(db).respond_to_approval(request.id, FINANCE, "approve")
    build_runner(db, lease_seconds=10).run_until_idle(max_seconds=60)
    assert status(db, workflow_id) == "completed"
    output = ops.get_workflow(db, workflow_id).step_outputs["check"]
    assert output["tool_calls"][0]["tool"] == "validate_order"
    assert output["result"].startswith("Rehearsed: Check order O-1")
    with db.read() as session:
        assert session.get(AgentProfile, "checker") is not None
    profiles.delete_profile(db, "checker", ADMIN)  # the workflow is completed
