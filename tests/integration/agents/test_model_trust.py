"""Who may choose what about an agent's model (core.definitions.model_rules, core.agents.llm).

Anyone who may start a workflow writes its steps' ``agent.model``: a service token, or a
tenant's approver. Such a definition must not choose code for the runner to import
(``provider: python``), an environment variable to send as its key (``api_key_env``), or
a server to receive the platform's or the tenant's key (``api_base``). The stand-in
servers are loopback OpenAI-compatible servers answered through the real openai client
(tests/integration/agents/test_openai_server.py); SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import smolagents
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.agents import test_connection as check_connection
from core.agents.llm import build_model
from core.agents.profiles import create_profile
from core.base.errors import ConfigurationError, InvalidAgentProfile, InvalidTenantSettings
from core.definitions.agents import ModelSpec
from core.engine.tools import ToolRegistry
from core.identity.api_tokens import create_token
from core.identity.users import add_user
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Workflow
from core.tenants import registry as tenants
from gateway.app import create_app
from tests.helpers.engine import run, start, status
from tests.integration.agents.test_openai_server import FakeOpenAI

SERVICE = "svc@example.com"
AMY = "amy@acme.example"  # a tenant's approver: may start workflows in her tenant
ADMIN = "admin@example.com"
PLATFORM_KEY = "sk-platform-secret-0123"
LINK_SECRET = "link-secret-0123456789abcdef"
TENANT_KEY = "sk-acme-tenant-key-0123"
MARKER_TEXT = "tests.integration.agents.test_model_trust:marker_model"


def marker_model(path: str, **_: Any) -> Any:
    """A factory no operator allowed: it leaves a file behind if it is ever called."""
    Path(path).write_text("imported and called")
    raise RuntimeError("marker_model must never be called")


def rce_step(marker: Path) -> dict[str, Any]:
    return {
        "name": "t",
        "type": "task",
        "task": "hi",
        "retry": {"max_attempts": 1},
        "agent": {
            "model": {
                "provider": "python",
                "model_id": "os:system",
                "options": {"command": f"touch {marker}"},
            }
        },
    }


def model_step(**model: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "type": "task",
        "task": "hi",
        "retry": {"max_attempts": 1},
        "agent": {"model": model},
    }


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    """(the platform's configured server, a server the definition's author runs)."""
    platform, elsewhere = (FakeOpenAI([{"tool": "final_answer", "args": {"answer": "done"}}]) for _ in "ab")
    yield platform, elsewhere
    platform.close()
    elsewhere.close()


@pytest.fixture
def platform_env(monkeypatch: pytest.MonkeyPatch, servers: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "test-model")
    monkeypatch.setenv("COUNTERSIGN_MODEL_API_BASE", servers[0].url)
    monkeypatch.delenv("COUNTERSIGN_MODEL_API_KEY_ENV", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", PLATFORM_KEY)
    monkeypatch.setenv("HF_TOKEN", PLATFORM_KEY)
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)


def secrets_sent(server: FakeOpenAI) -> set[str]:
    return {h.get("authorization", "") for h in server.headers}


def workflow_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Workflow)) or 0)


@pytest.fixture
def api(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db, approver_ui=False)) as client:
        yield client


def bearer(db: Database, email: str, role: str, tenant: str | None = None) -> dict[str, str]:
    add_user(db, email, role=role, tenant=tenant)
    _, token = create_token(db, email, "tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def acme(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_SECRETS_KEY", Fernet.generate_key().decode())
    tenants.create_tenant(db, "acme")


# -- refused when the workflow starts: REST ------------------------------------------------


@pytest.mark.parametrize("who", ["service token", "tenant approver"])
def test_rest_start_with_a_python_model_the_operator_did_not_allow_is_refused(
    db: Database, api: TestClient, tmp_path: Path, who: str, request: pytest.FixtureRequest
) -> None:
    if who == "service token":
        headers = bearer(db, SERVICE, "service")
    else:
        request.getfixturevalue("acme")
        headers = bearer(db, AMY, "approver", tenant="acme")
    marker = tmp_path / "pwned"
    answer = api.post(
        "/api/workflows",
        headers=headers,
        json={"definition": {"name": "innocent", "steps": [rce_step(marker)]}},
    )
    assert answer.status_code == 422, answer.text
    assert "steps[0].agent.model.model_id" in answer.text and "COUNTERSIGN_PYTHON_MODELS" in answer.text
    build_runner(db).run_until_idle()
    assert workflow_count(db) == 0 and not marker.exists()


@pytest.mark.usefixtures("platform_env")
def test_rest_start_naming_a_secret_variable_as_the_key_is_refused(
    db: Database, api: TestClient, servers: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    headers = bearer(db, SERVICE, "service")
    step = model_step(
        provider="openai", model_id="m", api_base=servers[1].url, api_key_env="COUNTERSIGN_LINK_SECRETS"
    )
    answer = api.post("/api/workflows", headers=headers, json={"definition": {"name": "x", "steps": [step]}})
    assert answer.status_code == 422, answer.text
    assert "steps[0].agent.model.api_key_env" in answer.text and "COUNTERSIGN_LINK_SECRETS" in answer.text
    build_runner(db).run_until_idle()
    assert workflow_count(db) == 0 and servers[1].requests == []


@pytest.mark.parametrize(
    "options",
    [
        {"client_kwargs": {"base_url": "http://127.0.0.1:9/v1"}},
        {"base_url": "http://127.0.0.1:9/v1"},
        {"api_key": "x"},
        {"trust_remote_code": True},
    ],
)
def test_rest_start_with_options_beyond_generation_options_is_refused(
    db: Database, api: TestClient, options: dict[str, Any]
) -> None:
    headers = bearer(db, SERVICE, "service")
    step = model_step(provider="openai", model_id="m", options={"temperature": 0.1, **options})
    answer = api.post("/api/workflows", headers=headers, json={"definition": {"name": "x", "steps": [step]}})
    assert answer.status_code == 422, answer.text
    assert "steps[0].agent.model.options" in answer.text and next(iter(options)) in answer.text
    assert workflow_count(db) == 0


# -- the platform's key goes only to the platform's server ---------------------------------


@pytest.mark.usefixtures("platform_env")
def test_a_definitions_own_server_never_receives_the_platform_key(
    db: Database, servers: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    platform, elsewhere = servers
    start(db, [model_step(provider="openai", model_id="m", api_base=elsewhere.url)])
    start(
        db,
        [model_step(provider="openai", model_id="m", api_base=elsewhere.url, api_key_env="OPENAI_API_KEY")],
    )
    run(db, ToolRegistry())
    assert len(elsewhere.requests) == 2
    assert secrets_sent(elsewhere) == {"Bearer not-needed"}
    # The platform's own server, named by the definition or not, still gets the platform's key.
    workflow_id = start(db, [model_step(provider="openai", model_id="m", api_base=platform.url + "/")])
    start(db, [model_step(model_id="m")])
    run(db, ToolRegistry())
    assert status(db, workflow_id) == "completed"
    assert secrets_sent(platform) == {f"Bearer {PLATFORM_KEY}"} and len(platform.requests) == 2


@pytest.mark.usefixtures("platform_env")
def test_an_operator_listed_key_variable_goes_only_to_the_platform_server(
    db: Database, servers: tuple[FakeOpenAI, FakeOpenAI], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, elsewhere = servers
    monkeypatch.setenv("COUNTERSIGN_MODEL_KEY_ENVS", "VENDOR_KEY")
    monkeypatch.setenv("VENDOR_KEY", "sk-vendor-0123")
    start(db, [model_step(provider="openai", model_id="m", api_base=elsewhere.url, api_key_env="VENDOR_KEY")])
    start(db, [model_step(provider="openai", model_id="m", api_key_env="VENDOR_KEY")])
    run(db, ToolRegistry())
    assert secrets_sent(elsewhere) == {"Bearer not-needed"}
    assert secrets_sent(platform) == {"Bearer sk-vendor-0123"}


@pytest.mark.usefixtures("platform_env")
def test_a_tenant_key_goes_to_the_tenants_server_never_to_the_definitions(
    db: Database, acme: None, servers: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    platform, elsewhere = servers
    tenants.set_tenant_secret(db, "acme", "model_api_key", TENANT_KEY)
    add_user(db, AMY, role="approver", tenant="acme")
    # The tenant names no server of its own: its key goes to the platform's, not to the definition's.
    start(db, [model_step(provider="openai", model_id="m", api_base=elsewhere.url)], created_by=AMY)
    start(db, [model_step(provider="openai", model_id="m")], created_by=AMY)
    run(db, ToolRegistry())
    assert secrets_sent(elsewhere) == {"Bearer not-needed"}
    assert secrets_sent(platform) == {f"Bearer {TENANT_KEY}"}
    # A tenant's own server gets the tenant's key, whatever server the definition names.
    own = FakeOpenAI([{"tool": "final_answer", "args": {"answer": "done"}}])
    try:
        tenants.set_tenant_model_settings(db, "acme", {"provider": "openai", "api_base": own.url})
        start(db, [model_step(provider="openai", model_id="m", api_base=elsewhere.url)], created_by=AMY)
        run(db, ToolRegistry())
        assert secrets_sent(own) == {f"Bearer {TENANT_KEY}"} and len(elsewhere.requests) == 1
    finally:
        own.close()


# -- built again when the agent runs (defence in depth) and in "Test connection" ----------


def test_the_model_builder_refuses_what_a_definition_may_not_choose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "called"
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", LINK_SECRET)
    unchecked = [  # as if stored before these rules, or built around the validators
        ModelSpec.model_construct(provider="python", model_id=MARKER_TEXT, options={"path": str(marker)}),
        ModelSpec.model_construct(
            provider="python", model_id="os:system", options={"command": f"touch {marker}"}
        ),
        ModelSpec.model_construct(
            provider="openai",
            model_id="m",
            api_base="http://127.0.0.1:9/v1",
            api_key_env="COUNTERSIGN_LINK_SECRETS",
        ),
        ModelSpec.model_construct(
            provider="openai", model_id="m", options={"client_kwargs": {"base_url": "x"}}
        ),
    ]
    for spec in unchecked:
        with pytest.raises(ConfigurationError, match="agent.model.(model_id|api_key_env|options)"):
            build_model(spec)
    assert not marker.exists()


@pytest.mark.usefixtures("platform_env")
def test_test_connection_applies_the_same_rules(
    tmp_path: Path, servers: tuple[FakeOpenAI, FakeOpenAI], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, elsewhere = servers
    marker = tmp_path / "called"
    code = check_connection({"provider": "python", "model_id": MARKER_TEXT, "options": {"path": str(marker)}})
    assert not code.ok and "COUNTERSIGN_PYTHON_MODELS" in code.message and not marker.exists()
    secret = check_connection(
        {
            "provider": "openai",
            "model_id": "m",
            "api_base": elsewhere.url,
            "api_key_env": "COUNTERSIGN_LINK_SECRETS",
        }
    )
    assert not secret.ok and "COUNTERSIGN_LINK_SECRETS" in secret.message
    assert check_connection({"provider": "openai", "model_id": "m", "api_base": elsewhere.url}).ok
    assert check_connection({"provider": "openai", "model_id": "m"}).ok
    assert secrets_sent(elsewhere) == {"Bearer not-needed"}
    assert secrets_sent(platform) == {f"Bearer {PLATFORM_KEY}"}
    # A client that reads a key from the environment when given none (huggingface_hub reads
    # HF_TOKEN, litellm its provider's variable) gets a placeholder for another server.
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(smolagents, "InferenceClientModel", lambda **kwargs: made.append(kwargs))
    monkeypatch.setattr(smolagents, "LiteLLMModel", lambda **kwargs: made.append(kwargs))
    for provider in ("inference_client", "litellm"):
        build_model(ModelSpec(provider=provider, model_id="m", api_base=elsewhere.url))
        build_model(ModelSpec(provider=provider, model_id="m", api_key_env="HF_TOKEN"))
    assert [m.get("token", m.get("api_key")) for m in made] == ["not-needed", PLATFORM_KEY] * 2


def test_a_platform_configured_python_model_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COUNTERSIGN_PYTHON_MODELS", raising=False)
    with pytest.raises(ValueError, match="COUNTERSIGN_PYTHON_MODELS"):
        ModelSpec(provider="python", model_id="tests.integration.agents.scripted:ScriptedModel")
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "python")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "tests.integration.agents.scripted:ScriptedModel")
    ModelSpec(provider="python", model_id="tests.integration.agents.scripted:ScriptedModel")
    # With the platform on python, a bare model id is a factory too, and refused unless allowed.
    with pytest.raises(ValueError, match="not a Python model factory"):
        ModelSpec(model_id="os:system")


# -- profiles, tenants and users -----------------------------------------------------------


def test_profiles_are_held_to_the_same_rules(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    cases = [
        ({"model_provider": "python", "model_id": "os:system"}, "model_id: 'os:system' is not a Python"),
        (
            {"model_provider": "openai", "settings": {"model": {"api_key_env": "COUNTERSIGN_LINK_SECRETS"}}},
            "settings.model.api_key_env: 'COUNTERSIGN_LINK_SECRETS'",
        ),
        (
            {"model_provider": "openai", "settings": {"model": {"options": {"client_kwargs": {}}}}},
            "settings.model.options: 'client_kwargs'",
        ),
    ]
    for fields, problem in cases:
        with pytest.raises(InvalidAgentProfile) as refused:
            create_profile(db, {"name": "evil", **fields}, ADMIN)
        assert problem in str(refused.value)


def test_tenant_and_user_model_settings_are_held_to_the_same_rules(db: Database, acme: None) -> None:
    add_user(db, AMY, role="approver", tenant="acme")
    for model, problem in (
        ({"options": {"client_kwargs": {"base_url": "http://evil"}}}, "options: 'client_kwargs'"),
        ({"model_id": "http://127.0.0.1:9/v1"}, "model_id: a model's name, not a URL"),
    ):
        with pytest.raises(InvalidTenantSettings, match=problem):
            tenants.set_user_model_settings(db, AMY, model, actor=AMY)
        with pytest.raises(InvalidTenantSettings, match=problem):
            tenants.set_tenant_model_settings(db, "acme", model)
    with pytest.raises(InvalidTenantSettings, match="model_id: 'os:system' is not a Python model factory"):
        tenants.set_tenant_model_settings(db, "acme", {"provider": "python", "model_id": "os:system"})
    tenants.set_tenant_model_settings(
        db, "acme", {"provider": "python", "model_id": "tests.integration.agents.scripted:ScriptedModel"}
    )
    with pytest.raises(InvalidTenantSettings, match="model_id: 'os:system' is not a Python model factory"):
        tenants.set_user_model_settings(db, AMY, {"model_id": "os:system"}, actor=AMY)
