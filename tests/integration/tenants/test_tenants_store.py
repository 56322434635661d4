"""Tenants, flows, encrypted secrets and model settings in the database, on
SQLite and PostgreSQL; the resolved model reaches a real agent run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from core.base.errors import (
    InvalidTenantSettings,
    NotAuthorized,
    SecretsKeyError,
    TenantExists,
    TenantInUse,
    TenantNotFound,
)
from core.conversations import sessions as conversations
from core.definitions.agents import ModelSpec
from core.engine.tools import ToolRegistry
from core.identity.users import add_user
from core.store.db import Database
from core.store.tables import TenantSecret, WorkflowEvent
from core.tenants import registry as tenants
from tests.helpers.engine import run, start, status
from tests.integration.agents.test_openai_server import FakeOpenAI


@pytest.fixture(autouse=True)
def _accounts(db: Database) -> None:
    """Who acts in these tests has an account (core.identity.permissions): root is a platform admin."""
    add_user(db, "root@platform.test", role="admin")


KEY_VALUE = "sk-tenant-alpha-0123456789"


def test_tenant_crud_and_refusals(db: Database) -> None:
    tenants.create_tenant(db, "alpha", name="Alpha Inc", actor="root@platform.test")
    assert [(t.slug, t.name) for t in tenants.list_tenants(db)] == [("alpha", "Alpha Inc")]
    with pytest.raises(TenantExists):
        tenants.create_tenant(db, "alpha")
    with pytest.raises(InvalidTenantSettings, match="slug: lowercase"):
        tenants.create_tenant(db, "Not A Slug")
    add_user(db, "amy@alpha.test", role="admin", tenant="alpha")
    with pytest.raises(NotAuthorized, match="may not tenants:manage .*platform users only"):
        tenants.create_tenant(db, "gamma", actor="amy@alpha.test")
    with pytest.raises(TenantInUse, match=r"users \(1\)"):
        tenants.delete_tenant(db, "alpha")
    tenants.create_tenant(db, "beta")
    tenants.save_flow(db, "beta", {"name": "support", "tools": ["send_confirmation"]})
    tenants.delete_tenant(db, "beta")
    with pytest.raises(TenantNotFound):
        tenants.list_flows(db, "beta")


@pytest.mark.parametrize("who", ["amy@alpha.test", "gil@globex.test", "viewer@platform.test"])
def test_deleting_a_tenant_is_refused_before_saying_what_it_holds(db: Database, who: str) -> None:
    """Who may not manage tenants learns nothing of one: not what it holds, nor whether
    it exists (before: 'Tenant 'alpha' still has users (2), ...' to anyone)."""
    tenants.create_tenant(db, "alpha")
    tenants.create_tenant(db, "globex")
    add_user(db, "amy@alpha.test", role="admin", tenant="alpha")
    add_user(db, "gil@globex.test", role="admin", tenant="globex")
    add_user(db, "viewer@platform.test", role="viewer")
    for slug in ("alpha", "no-such-tenant"):
        with pytest.raises(NotAuthorized, match="may not tenants:manage") as refused:
            tenants.delete_tenant(db, slug, actor=who)
        assert "still has" not in str(refused.value) and "users (" not in str(refused.value)
    assert {t.slug for t in tenants.list_tenants(db)} == {"alpha", "globex"}
    with pytest.raises(TenantInUse, match=r"users \(1\)"):
        tenants.delete_tenant(db, "alpha", actor="root@platform.test")


def test_flows_are_validated_field_by_field_and_write_nothing_when_bad(db: Database) -> None:
    tenants.create_tenant(db, "alpha")
    saved = tenants.save_flow(
        db,
        "alpha",
        {
            "name": "food_ordering",
            "agent_type": "tool_calling",
            "description": "Orders",
            "tools": ["validate_order", "charge_payment"],
            "parameters": {"max_steps": 5},
        },
    )
    assert tenants.flow_dict(saved)["tools"] == ["validate_order", "charge_payment"]
    with pytest.raises(InvalidTenantSettings) as bad:
        tenants.save_flow(
            db,
            "alpha",
            {
                "name": "x",
                "agent_type": "planner",
                "tools": ["validate_order", "launch_rockets"],
                "parameters": "fast",
            },
        )
    message = str(bad.value)
    assert message.startswith("Invalid flow: ")
    for field in (
        "agent_type: must be one of tool_calling, code",
        "tools[1]: 'launch_rockets'",
        "parameters: ",
    ):
        assert field in message
    assert [f.name for f in tenants.list_flows(db, "alpha")] == ["food_ordering"]
    with pytest.raises(InvalidTenantSettings, match=r"parameters\.max_step: unknown agent parameter"):
        tenants.save_flow(db, "alpha", {"name": "y", "parameters": {"max_step": 5}})
    with pytest.raises(InvalidTenantSettings, match=r"parameters\.max_steps: Input should be"):
        tenants.save_flow(db, "alpha", {"name": "y", "parameters": {"max_steps": 0}})
    spec = tenants.flow_agent_spec(db, "alpha", "food_ordering")
    assert (spec.type, spec.tools, spec.max_steps) == (
        "tool_calling",
        ["validate_order", "charge_payment"],
        5,
    )
    tenants.remove_flow(db, "alpha", "food_ordering")
    assert tenants.list_flows(db, "alpha") == []


def test_secrets_are_ciphertext_at_rest_and_listed_masked(db: Database, secrets_key: str) -> None:
    tenants.create_tenant(db, "alpha")
    info = tenants.set_tenant_secret(db, "alpha", tenants.MODEL_API_KEY_SECRET, KEY_VALUE)
    with db.read() as session:
        [row] = session.scalars(select(TenantSecret)).all()
        event_data = [
            e.data
            for e in session.scalars(
                select(WorkflowEvent).where(WorkflowEvent.event_type == "tenant.secret_set")
            )
        ]
    assert KEY_VALUE not in row.ciphertext and secrets_key not in row.ciphertext
    assert row.ciphertext.startswith("gAAAA")  # a Fernet token
    assert event_data == [{"tenant": "alpha", "name": "model_api_key"}]
    assert info.masked == tenants.MASK
    listed = tenants.list_tenant_secrets(db, "alpha")
    assert [(s.name, s.masked) for s in listed] == [("model_api_key", tenants.MASK)]
    assert KEY_VALUE not in repr(listed)
    assert tenants.tenant_secret_value(db, "alpha", "model_api_key") == KEY_VALUE


def test_rotation_reencrypts_under_the_new_key(
    db: Database, secrets_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    tenants.create_tenant(db, "alpha")
    tenants.set_tenant_secret(db, "alpha", "model_api_key", KEY_VALUE)
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", f"{new},{secrets_key}")
    assert tenants.rotate_tenant_secrets(db) == 1
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", new)  # the old key can go now
    assert tenants.tenant_secret_value(db, "alpha", "model_api_key") == KEY_VALUE


def test_without_a_key_nothing_is_written(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COUNTERSIGN_SECRETS_KEY", raising=False)
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", str(tmp_path / "absent.toml"))
    tenants.create_tenant(db, "alpha")
    with pytest.raises(SecretsKeyError, match="not set"):
        tenants.set_tenant_secret(db, "alpha", "model_api_key", KEY_VALUE)
    assert tenants.list_tenant_secrets(db, "alpha") == []


@pytest.fixture
def platform_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "platform-model")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_BASE", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_KEY_ENV", "PLATFORM_KEY")
    monkeypatch.setenv("PLATFORM_KEY", "sk-platform-secret")


def test_resolution_order_platform_then_tenant_then_user(
    db: Database, secrets_key: str, platform_model: None
) -> None:
    tenants.create_tenant(db, "alpha")
    add_user(db, "amy@alpha.test", tenant="alpha")
    # Platform only: the environment, completed by the step.
    spec = tenants.resolve_model_spec(db, "alpha", "amy@alpha.test", ModelSpec(options={"temperature": 0.5}))
    assert (spec.provider, spec.model_id, spec.api_key_env) == ("openai", "platform-model", "PLATFORM_KEY")
    assert spec.options == {"temperature": 0.5}
    # Tenant over platform: same server, its own model and key.
    tenants.set_tenant_model_settings(
        db, "alpha", {"model_id": "tenant-model", "options": {"temperature": 0.2, "top_p": 0.9}}
    )
    tenants.set_tenant_secret(db, "alpha", "model_api_key", KEY_VALUE)
    spec = tenants.resolve_model_spec(db, "alpha", "amy@alpha.test", ModelSpec(options={"seed": 1}))
    assert spec.model_id == "tenant-model"
    assert spec.options == {"seed": 1, "temperature": 0.2, "top_p": 0.9}
    assert isinstance(spec, tenants.ResolvedModelSpec) and spec.api_key == SecretStr(KEY_VALUE)
    assert KEY_VALUE not in repr(spec) and KEY_VALUE not in spec.model_dump_json()
    # User over tenant: model and options only.
    tenants.set_user_model_settings(
        db,
        "amy@alpha.test",
        {"model_id": "user-model", "options": {"temperature": 0.0}},
        actor="amy@alpha.test",
    )
    spec = tenants.resolve_model_spec(db, "alpha", "amy@alpha.test")
    assert (spec.model_id, spec.options["temperature"], spec.options["top_p"]) == ("user-model", 0.0, 0.9)
    # A flow's own model is the most specific layer.
    spec = tenants.resolve_model_spec(
        db, "alpha", "amy@alpha.test", flow=ModelSpec(model_id="flow-model", options={"top_p": 0.5})
    )
    assert (spec.model_id, spec.options["top_p"], spec.options["temperature"]) == ("flow-model", 0.5, 0.0)
    with pytest.raises(InvalidTenantSettings, match="api_base: unknown field"):
        tenants.set_user_model_settings(
            db, "amy@alpha.test", {"api_base": "http://evil.test"}, actor="amy@alpha.test"
        )
    with pytest.raises(InvalidTenantSettings, match="keys are secrets"):
        tenants.set_tenant_model_settings(db, "alpha", {"api_key": "sk-in-clear"})


def test_the_platform_key_never_goes_to_a_tenant_server(db: Database, platform_model: None) -> None:
    from core.agents.llm import build_model

    tenants.create_tenant(db, "alpha")
    tenants.set_tenant_model_settings(db, "alpha", {"api_base": "http://127.0.0.1:8/v1"})
    spec = tenants.resolve_model_spec(db, "alpha", None)
    assert spec.api_base == "http://127.0.0.1:8/v1"
    assert build_model(spec).client_kwargs["api_key"] == "not-needed"  # not sk-platform-secret
    assert (
        build_model(tenants.resolve_model_spec(db, None, None)).client_kwargs["api_key"]
        == "sk-platform-secret"
    )


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI([{"tool": "final_answer", "args": {"answer": "done"}}])
    yield fake
    fake.close()


def test_a_tenant_workflow_runs_with_the_tenant_key_and_the_users_model(
    db: Database, secrets_key: str, platform_model: None, server: FakeOpenAI
) -> None:
    tenants.create_tenant(db, "alpha")
    tenants.set_tenant_model_settings(
        db, "alpha", {"provider": "openai", "api_base": server.url, "model_id": "tenant-model"}
    )
    tenants.set_tenant_secret(db, "alpha", "model_api_key", KEY_VALUE)
    add_user(db, "amy@alpha.test", tenant="alpha")
    tenants.set_user_model_settings(db, "amy@alpha.test", {"model_id": "amys-model"})
    workflow_id = start(
        db, [{"name": "agent", "type": "task", "task": "Say done."}], created_by="amy@alpha.test"
    )
    run(db, ToolRegistry())
    assert status(db, workflow_id) == "completed"
    assert server.requests[0]["model"] == "amys-model"
    assert server.headers[0]["authorization"] == f"Bearer {KEY_VALUE}"


def test_a_tenant_session_is_answered_with_the_tenant_key_and_the_users_model(
    db: Database, secrets_key: str, platform_model: None
) -> None:
    fake = FakeOpenAI([{"content": "Hello from alpha's model."}])
    try:
        tenants.create_tenant(db, "alpha")
        tenants.set_tenant_model_settings(
            db, "alpha", {"provider": "openai", "api_base": fake.url, "model_id": "tenant-model"}
        )
        tenants.set_tenant_secret(db, "alpha", "model_api_key", KEY_VALUE)
        add_user(db, "amy@alpha.test", tenant="alpha")
        tenants.set_user_model_settings(db, "amy@alpha.test", {"model_id": "amys-model"})
        chat = conversations.start_session(db, "amy@alpha.test", "assistant")
        conversations.post_user_message(db, chat.id, "amy@alpha.test", "Hi")
        history = conversations.full_history(db, chat.id, "amy@alpha.test")
    finally:
        fake.close()
    assert chat.tenant == "alpha"
    assert [(m.role, m.content) for m in history] == [
        ("user", "Hi"),
        ("assistant", "Hello from alpha's model."),
    ]
    assert fake.requests[0]["model"] == "amys-model"
    assert fake.headers[0]["authorization"] == f"Bearer {KEY_VALUE}"
