"""COUNTERSIGN_ENV=production: the dashboard, gateway and runner refuse development secrets."""

from __future__ import annotations

import pytest

import core.base.secrets
from core.approvals.links import DEV_SECRET
from core.base.errors import ConfigurationError
from core.ops.production import require_production_secrets

NAMES = (
    "COUNTERSIGN_SESSION_SECRET",
    "COUNTERSIGN_SECRET_KEY",
    "COUNTERSIGN_LINK_SECRETS",
    "COUNTERSIGN_SECRETS_KEY",
    "COUNTERSIGN_WEBHOOK_SECRET",
    "COUNTERSIGN_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(core.base.secrets, "_file_secrets", dict)
    monkeypatch.setenv("COUNTERSIGN_ENV", "production")


def test_every_missing_or_default_secret_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_LINK_SECRETS", DEV_SECRET)
    monkeypatch.setenv("COUNTERSIGN_WEBHOOK_URL", "https://hooks.example.com/x")
    with pytest.raises(ConfigurationError) as refusal:
        require_production_secrets("The gateway")
    message = str(refusal.value)
    assert message.startswith("The gateway refuses to start")
    for name in (
        "COUNTERSIGN_SESSION_SECRET",
        "COUNTERSIGN_LINK_SECRETS is a development default",
        "COUNTERSIGN_SECRETS_KEY",
        "COUNTERSIGN_WEBHOOK_SECRET",
    ):
        assert name in message


def test_real_secrets_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COUNTERSIGN_SESSION_SECRET", "COUNTERSIGN_LINK_SECRETS", "COUNTERSIGN_SECRETS_KEY"):
        monkeypatch.setenv(name, f"random-{name}-4f9a1c")
    require_production_secrets("The runner")


@pytest.mark.parametrize("token", ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"])
@pytest.mark.parametrize("signing", [None, "change-me"])
def test_slack_configured_needs_its_signing_secret(
    monkeypatch: pytest.MonkeyPatch, token: str, signing: str | None
) -> None:
    for name in ("COUNTERSIGN_SESSION_SECRET", "COUNTERSIGN_LINK_SECRETS", "COUNTERSIGN_SECRETS_KEY"):
        monkeypatch.setenv(name, f"random-{name}-4f9a1c")
    require_production_secrets("The gateway")  # Slack not configured: not asked for
    monkeypatch.setenv(token, "xoxb-real-looking-token")
    if signing is not None:
        monkeypatch.setenv("SLACK_SIGNING_SECRET", signing)
    with pytest.raises(ConfigurationError) as refusal:
        require_production_secrets("The gateway")
    message = str(refusal.value)
    expected = (
        "SLACK_SIGNING_SECRET is not set while Slack is configured"
        if signing is None
        else "SLACK_SIGNING_SECRET is a development default value (Slack button clicks)"
    )
    assert expected in message, message
    assert not [n for n in NAMES if n in message and n != "SLACK_SIGNING_SECRET"], message
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "8f14e45fceea167a5a36dedd4bea2543")
    require_production_secrets("The gateway")


def test_development_starts_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_ENV", "development")
    require_production_secrets("The dashboard")


def test_the_runner_and_gateway_refuse() -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from gateway.app import create_app

    result = CliRunner().invoke(app, ["runner", "--until-idle"])
    assert result.exit_code != 0
    assert "COUNTERSIGN_SESSION_SECRET" in str(result.exception) + result.output
    with pytest.raises(ConfigurationError, match="The gateway refuses"):
        create_app()
