"""The REST API on SQLite and PostgreSQL: every endpoint's happy path and its refusals."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.approvals.engine import ApprovalEngine
from core.engine import workflows as ops
from core.identity.api_tokens import list_tokens, revoke_token
from core.identity.permissions import token_actions
from core.runtime import build_runner
from core.store.db import Database
from tests.integration.gateway.conftest import ADMIN, BOSS, definition, token_for, waiting_workflow

FORM = {
    "type": "form",
    "form_fields": [
        {"name": "verdict", "type": "string", "enum": ["publish", "hold"], "required": True},
        {"name": "contact", "type": "string", "format": "email"},
    ],
}


def assert_error(response, status: int, error: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["message"] and isinstance(body["problems"], list)
    return body


def test_no_token_bad_token_and_revoked_token_are_401(
    client: TestClient, db: Database, boss: dict[str, str]
) -> None:
    assert_error(client.get("/api/workflows"), 401, "Unauthenticated")
    assert client.get("/api/workflows").headers["www-authenticate"] == "Bearer"
    assert_error(
        client.get("/api/workflows", headers={"Authorization": "Bearer cs_nope"}), 401, "Unauthenticated"
    )
    me = client.get("/api/me", headers=boss).json()
    assert (me["email"], me["token_name"]) == (BOSS, "tests")
    assert me["scopes"] == sorted(token_actions("approver"))  # by default, the user's whole role
    revoke_token(db, list_tokens(db, BOSS)[0].id)
    body = assert_error(client.get("/api/me", headers=boss), 401, "Unauthenticated")
    assert "revoked" in body["message"]


def test_token_use_is_recorded(client: TestClient, db: Database, boss: dict[str, str]) -> None:
    assert list_tokens(db, BOSS)[0].last_used_at is None
    client.get("/api/me", headers=boss)
    assert list_tokens(db, BOSS)[0].last_used_at is not None


def test_create_list_get_workflow(client: TestClient, db: Database, boss: dict[str, str]) -> None:
    # Asking only the person who starts it is refused: nobody could ever answer.
    refused = client.post("/api/workflows", headers=boss, json={"definition": definition()})
    assert refused.status_code == 422 and "the only approver is boss@example.com" in refused.text
    two = definition({"requested_from": [BOSS, "deputy@example.com"]})
    response = client.post(
        "/api/workflows", headers=boss, json={"definition": two, "input": {"version": "1.2"}}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["status"], created["created_by"]) == ("running", BOSS)
    assert created["input_data"] == {"version": "1.2"}
    build_runner(db).run_until_idle()

    page = client.get("/api/workflows", headers=boss, params={"status": "waiting_approval"}).json()
    assert page["total"] == 1 and [w["id"] for w in page["items"]] == [created["id"]]
    assert client.get("/api/workflows", headers=boss, params={"status": "completed"}).json()["total"] == 0
    assert client.get("/api/workflows", headers=boss, params={"search": "Rele"}).json()["total"] == 1
    assert client.get("/api/workflows", headers=boss, params={"offset": 1}).json()["items"] == []

    detail = client.get(f"/api/workflows/{created['id']}", headers=boss).json()
    assert detail["status"] == "waiting_approval"
    assert "workflow.created" in [e["type"] for e in detail["events"]]
    assert [a["title"] for a in detail["pending_approvals"]] == ["Ship release <b>1.2</b>"]
    assert [c["name"] for c in detail["checkpoints"]][:1] == ["prepare"]


def test_invalid_definition_is_422_with_problems_and_writes_nothing(
    client: TestClient, db: Database, boss: dict[str, str]
) -> None:
    bad = {"name": "x", "steps": [{"name": "a", "type": "approval"}]}
    body = assert_error(
        client.post("/api/workflows", headers=boss, json={"definition": bad}), 422, "DefinitionError"
    )
    assert any("approval_config" in p for p in body["problems"])
    assert_error(
        client.post("/api/workflows", headers=boss, json={"definition": {}, "nope": 1}), 422, "InvalidRequest"
    )
    assert_error(
        client.get("/api/workflows", headers=boss, params={"status": "sleeping"}), 422, "InvalidRequest"
    )
    assert ops.list_workflows(db).total == 0


def test_unknown_ids_are_404(client: TestClient, boss: dict[str, str]) -> None:
    assert_error(client.get("/api/workflows/nope", headers=boss), 404, "WorkflowNotFound")
    assert_error(client.post("/api/workflows/nope/pause", headers=boss, json={}), 404, "WorkflowNotFound")
    assert_error(client.get("/api/approvals/nope", headers=boss), 404, "ApprovalNotFound")
    assert_error(
        client.post("/api/approvals/nope/respond", headers=boss, json={"decision": "approve"}),
        404,
        "ApprovalNotFound",
    )
    assert_error(client.get("/api/workflows/nope/checkpoints", headers=boss), 404, "WorkflowNotFound")
    assert_error(client.get("/api/nothing-here", headers=boss), 404, "NotFound")


def test_pause_resume_cancel(
    client: TestClient, db: Database, boss: dict[str, str], admin: dict[str, str]
) -> None:
    workflow_id, approval = waiting_workflow(db)
    paused = client.post(f"/api/workflows/{workflow_id}/pause", headers=boss, json={"reason": "lunch"})
    assert paused.json()["status"] == "paused"
    assert_error(
        client.post(f"/api/workflows/{workflow_id}/pause", headers=boss, json={}), 409, "InvalidTransition"
    )
    resumed = client.post(f"/api/workflows/{workflow_id}/resume", headers=boss)
    assert resumed.json()["status"] == "waiting_approval"  # its approval is still open
    # Only admins (and the workflow's starter) cancel, as in the dashboard.
    body = assert_error(
        client.post(f"/api/workflows/{workflow_id}/cancel", headers=boss, json={"reason": "no"}),
        403,
        "NotAuthorized",
    )
    assert body["action"] == "workflows:cancel"
    assert body["message"] == f"{BOSS} may not workflows:cancel (role approver)"
    cancelled = client.post(f"/api/workflows/{workflow_id}/cancel", headers=admin, json={"reason": "no"})
    assert cancelled.json()["status"] == "cancelled"
    assert ApprovalEngine(db).get(approval.id).status == "cancelled"
    assert_error(client.post(f"/api/workflows/{workflow_id}/retry", headers=boss), 409, "InvalidTransition")
    events = ops.events_of(db, workflow_id)
    assert {e.actor for e in events if e.event_type == "workflow.status_changed"} >= {BOSS, ADMIN}
    [refused] = [e for e in events if e.event_type == "permission.refused"]
    assert (refused.actor, refused.data["action"], refused.data["token"]) == (
        BOSS,
        "workflows:cancel",
        "tests",
    )


def test_retry_a_failed_workflow(client: TestClient, db: Database, boss: dict[str, str]) -> None:
    failing = {"name": "Fails", "steps": [{"name": "x", "type": "tool", "tool": "no_such_tool"}]}
    workflow_id = client.post("/api/workflows", headers=boss, json={"definition": failing}).json()["id"]
    build_runner(db).run_until_idle()
    assert ops.get_workflow(db, workflow_id).status == "failed"
    retried = client.post(f"/api/workflows/{workflow_id}/retry", headers=boss)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "running"


def test_approvals_list_get_and_respond(
    client: TestClient, db: Database, boss: dict[str, str], other: dict[str, str]
) -> None:
    workflow_id, approval = waiting_workflow(db)
    mine = client.get("/api/approvals", headers=boss).json()
    assert [a["id"] for a in mine] == [approval.id]
    assert client.get("/api/approvals", headers=other).json() == []
    of_workflow = client.get("/api/approvals", headers=other, params={"workflow_id": workflow_id}).json()
    assert [a["id"] for a in of_workflow] == [approval.id]

    body = assert_error(
        client.post(f"/api/approvals/{approval.id}/respond", headers=other, json={"decision": "approve"}),
        403,
        "NotAuthorized",
    )
    assert OTHER_NOT_APPROVER in body["message"]

    answered = client.post(
        f"/api/approvals/{approval.id}/respond", headers=boss, json={"decision": "approve", "comment": "go"}
    )
    assert answered.status_code == 200, answered.text
    result = answered.json()
    assert (result["status"], result["decided_by"]) == ("approved", BOSS)
    assert [(r["approver"], r["channel"], r["comment"]) for r in result["responses"]] == [(BOSS, "api", "go")]
    assert_error(
        client.post(f"/api/approvals/{approval.id}/respond", headers=boss, json={"decision": "approve"}),
        409,
        "ApprovalClosed",
    )
    assert client.get(f"/api/approvals/{approval.id}", headers=other).json()["status"] == "approved"

    build_runner(db).run_until_idle()
    assert ops.get_workflow(db, workflow_id).status == "completed"


OTHER_NOT_APPROVER = "other@example.com is not an approver"


def test_second_vote_is_409(client: TestClient, db: Database, boss: dict[str, str]) -> None:
    second = "second@example.com"
    _, approval = waiting_workflow(db, {"requested_from": [BOSS, second], "approval_threshold": 2})
    first = client.post(f"/api/approvals/{approval.id}/respond", headers=boss, json={"decision": "approve"})
    assert first.json()["status"] == "pending"
    assert_error(
        client.post(f"/api/approvals/{approval.id}/respond", headers=boss, json={"decision": "approve"}),
        409,
        "AlreadyVoted",
    )
    done = client.post(
        f"/api/approvals/{approval.id}/respond", headers=token_for(db, second), json={"decision": "approve"}
    )
    assert done.json()["status"] == "approved"


def test_invalid_form_answer_is_422_naming_the_field(
    client: TestClient, db: Database, boss: dict[str, str]
) -> None:
    _, approval = waiting_workflow(db, FORM)
    body = assert_error(
        client.post(
            f"/api/approvals/{approval.id}/respond",
            headers=boss,
            json={"decision": "approve", "data": {"contact": "not-mail"}},
        ),
        422,
        "InvalidResponse",
    )
    assert any(p.startswith("contact:") for p in body["problems"])
    assert any("verdict" in p for p in body["problems"])
    assert ApprovalEngine(db).responses(approval.id) == []
    good = client.post(
        f"/api/approvals/{approval.id}/respond",
        headers=boss,
        json={"decision": "approve", "data": {"verdict": "publish"}},
    )
    assert good.json()["decision_data"] == {"verdict": "publish"}
    assert_error(
        client.post(f"/api/approvals/{approval.id}/respond", headers=boss, json={"decision": "maybe"}),
        422,
        "InvalidRequest",
    )


def test_viewer_cannot_change_anything(client: TestClient, db: Database) -> None:
    viewer = token_for(db, "viewer@example.com", role="viewer")
    assert client.get("/api/workflows", headers=viewer).status_code == 200
    assert_error(
        client.post("/api/workflows", headers=viewer, json={"definition": definition()}), 403, "NotAuthorized"
    )


def test_checkpoints_and_rollback(
    client: TestClient, db: Database, boss: dict[str, str], admin: dict[str, str]
) -> None:
    workflow_id, approval = waiting_workflow(db)
    created = client.post(
        f"/api/workflows/{workflow_id}/checkpoints",
        headers=boss,
        json={"name": "manual", "description": "before lunch"},
    )
    assert created.status_code == 201, created.text
    names = [c["name"] for c in client.get(f"/api/workflows/{workflow_id}/checkpoints", headers=boss).json()]
    assert names[0] == "prepare" and names[-1] == "manual"
    # Rolling back is for admins: an approver's token is refused, naming the action.
    body = assert_error(
        client.post(
            f"/api/workflows/{workflow_id}/rollback",
            headers=boss,
            json={"checkpoint": "prepare", "reason": "x"},
        ),
        403,
        "NotAuthorized",
    )
    assert body["action"] == "workflows:rollback"
    assert_error(
        client.post(
            f"/api/workflows/{workflow_id}/rollback",
            headers=admin,
            json={"checkpoint": "nope", "reason": "x"},
        ),
        404,
        "CheckpointNotFound",
    )
    assert_error(
        client.post(f"/api/workflows/{workflow_id}/rollback", headers=admin, json={"checkpoint": "prepare"}),
        422,
        "InvalidRequest",
    )  # reason required
    rolled = client.post(
        f"/api/workflows/{workflow_id}/rollback",
        headers=admin,
        json={"checkpoint": "prepare", "reason": "wrong version"},
    )
    assert rolled.status_code == 200, rolled.text
    result = rolled.json()
    assert result["checkpoint"] == "prepare" and result["cancelled_approvals"] == [approval.id]
    assert ops.get_workflow(db, workflow_id).status == "paused"
    rolled_back = [e for e in ops.events_of(db, workflow_id) if e.event_type == "workflow.rolled_back"]
    assert rolled_back[0].actor == ADMIN and rolled_back[0].data["reason"] == "wrong version"


def test_openapi_document_describes_the_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    respond = document["paths"]["/api/approvals/{approval_id}/respond"]["post"]
    body_ref = respond["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    answer = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert answer["properties"]["decision"]["enum"] == ["approve", "reject", "modify"]
    assert set(respond["responses"]) >= {"200", "401", "403", "404", "409", "422"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
