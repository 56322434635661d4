"""Fernet keys from the environment, rotation, key errors, the tenancy rule
and flow validation: pure pieces, no database."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from core.base.errors import SecretsKeyError, SecretUndecryptable
from core.store.tables import Workflow
from core.store.tenancy import can_see, tenant_scope, visible_tenant_filter
from core.tenants.registry import AGENT_TYPES, FlowFields, TenantModelSettings
from core.tenants.secrets import SECRETS_KEY_ENV, decrypt_secret, encrypt_secret


@pytest.fixture(autouse=True)
def no_secrets_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COUNTERSIGN_SECRETS_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.delenv(SECRETS_KEY_ENV, raising=False)


def test_round_trip_and_the_token_is_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(SECRETS_KEY_ENV, key)
    token = encrypt_secret("sk-live-1234567890")
    assert "sk-live" not in token and key not in token
    assert decrypt_secret(token) == "sk-live-1234567890"
    assert encrypt_secret("sk-live-1234567890") != token  # fresh IV each time


def test_rotation_new_key_first_reads_old_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(SECRETS_KEY_ENV, old)
    token = encrypt_secret("value-one")
    monkeypatch.setenv(SECRETS_KEY_ENV, f"{new}, {old}")
    assert decrypt_secret(token) == "value-one"
    fresh = encrypt_secret("value-two")
    assert Fernet(new.encode()).decrypt(fresh.encode()) == b"value-two"  # the first key encrypts
    monkeypatch.setenv(SECRETS_KEY_ENV, new)
    with pytest.raises(SecretUndecryptable, match="old key dropped"):
        decrypt_secret(token)


def test_missing_and_invalid_keys_are_named_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretsKeyError, match="COUNTERSIGN_SECRETS_KEY is not set"):
        encrypt_secret("x")
    monkeypatch.setenv(SECRETS_KEY_ENV, f"{Fernet.generate_key().decode()},not-a-key")
    with pytest.raises(SecretsKeyError, match="key 2 of 2 is not a Fernet key"):
        encrypt_secret("x")


def test_scope_rule() -> None:
    platform, alpha = tenant_scope(None), tenant_scope("alpha")
    assert platform.is_platform and not alpha.is_platform
    assert platform.sees(None) and platform.sees("alpha")
    assert alpha.sees("alpha") and not alpha.sees("beta") and not alpha.sees(None)
    assert can_see("alpha", "alpha") and not can_see("alpha", None) and can_see(None, "beta")
    assert visible_tenant_filter(Workflow.tenant, None) is None
    sql = str(alpha.apply(select(Workflow.id), Workflow.tenant))
    assert "workflows.tenant = " in sql
    assert tenant_scope("") == platform  # an empty tenant is no tenant


def test_flow_fields_name_the_bad_field() -> None:
    assert AGENT_TYPES == ("tool_calling", "code")
    with pytest.raises(ValueError, match="agent_type") as bad:
        FlowFields.model_validate({"name": "x", "agent_type": "planner"})
    assert "must be one of tool_calling, code" in str(bad.value)
    with pytest.raises(ValueError, match="parameters"):
        FlowFields.model_validate({"name": "x", "parameters": [1, 2]})
    with pytest.raises(ValueError, match="api_key"):
        TenantModelSettings.model_validate({"api_key": "sk-1"})
