"""Settings, from the environment or a ``.env`` file (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.base.locations import DEFAULT_DATABASE_URL, ENV_FILES

# Alert defaults (core/ops/alerts.py): evaluation interval, expiry window, runner silence.
ALERT_INTERVAL_SECONDS = 30.0
ALERT_EXPIRY_WINDOW_SECONDS = 3600.0
ALERT_HEARTBEAT_MISSING_SECONDS = 120.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore")

    # Plain DATABASE_URL, as every hosting platform names it.
    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    # Channels an approval notifies when its config names none: comma-separated
    # (e.g. "email,slack"), or "auto": the person channels (email, Slack) that
    # are configured, so a fresh install with none queues nothing to fail.
    default_channels_csv: str = Field(default="auto", alias="COUNTERSIGN_DEFAULT_CHANNELS")
    # Seconds a runner owns a claimed workflow before another may take it over.
    lease_seconds: float = Field(default=30.0, alias="COUNTERSIGN_LEASE_SECONDS")
    # Base URL of the dashboard, for deep links in notifications.
    dashboard_url: str = Field(default="http://localhost:8501", alias="COUNTERSIGN_DASHBOARD_URL")

    # Base URL of the gateway (FastAPI), for email confirmation links.
    gateway_url: str = Field(default="http://localhost:8000", alias="COUNTERSIGN_GATEWAY_URL")
    # "production" refuses to sign links with the labelled development secret.
    environment: str = Field(default="development", alias="COUNTERSIGN_ENV")
    # Seconds an emailed approval link stays valid.
    link_max_age: int = Field(default=7 * 86400, alias="COUNTERSIGN_LINK_MAX_AGE")
    # Notification delivery: attempts before "dead", exponential backoff
    # (seconds), per-channel circuit breaker, and the dispatcher's poll interval.
    notify_max_attempts: int = Field(default=8, alias="COUNTERSIGN_NOTIFY_MAX_ATTEMPTS")
    notify_backoff_initial: float = Field(default=5.0, alias="COUNTERSIGN_NOTIFY_BACKOFF_INITIAL")
    notify_backoff_max: float = Field(default=3600.0, alias="COUNTERSIGN_NOTIFY_BACKOFF_MAX")
    # After this long a row claimed by a dispatcher that died is due again.
    dispatch_claim_seconds: float = Field(default=120.0, alias="COUNTERSIGN_DISPATCH_CLAIM_SECONDS")
    breaker_threshold: int = Field(default=5, alias="COUNTERSIGN_BREAKER_THRESHOLD")
    breaker_cooldown: float = Field(default=60.0, alias="COUNTERSIGN_BREAKER_COOLDOWN")
    dispatch_poll_seconds: float = Field(default=1.0, alias="COUNTERSIGN_DISPATCH_POLL_SECONDS")
    # Alerts (core/ops/alerts.py), durations as seconds or "90s", "15m", "1h": how close
    # to its deadline an open approval raises, how long a runner may stay silent,
    # and how often runners evaluate the rules.
    alert_expiry_window: float = Field(
        default=ALERT_EXPIRY_WINDOW_SECONDS, alias="COUNTERSIGN_ALERT_EXPIRY_WINDOW"
    )
    alert_heartbeat_missing: float = Field(
        default=ALERT_HEARTBEAT_MISSING_SECONDS, alias="COUNTERSIGN_ALERT_HEARTBEAT_MISSING"
    )
    alert_interval: float = Field(default=ALERT_INTERVAL_SECONDS, alias="COUNTERSIGN_ALERT_INTERVAL")

    @field_validator("alert_expiry_window", "alert_heartbeat_missing", "alert_interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        from core.base.durations import parse_duration

        return parse_duration(value)

    @property
    def default_channels(self) -> list[str] | None:
        """The configured list, or None for "auto"."""
        if self.default_channels_csv.strip().lower() == "auto":
            return None
        return [c.strip() for c in self.default_channels_csv.split(",") if c.strip()]


# -- models: what the platform lets definitions, profiles and tenants use --------------------
# Read from the environment each time a model is checked or built (not cached), as the
# other COUNTERSIGN_MODEL_* settings are, so a runner and a gateway read the same rule.
PROVIDER_ENV = "COUNTERSIGN_MODEL_PROVIDER"
MODEL_ID_ENV = "COUNTERSIGN_MODEL_ID"
API_BASE_ENV = "COUNTERSIGN_MODEL_API_BASE"
API_KEY_ENV_ENV = "COUNTERSIGN_MODEL_API_KEY_ENV"
# Comma-separated ``module:attr`` factories the ``python`` model provider may call.
PYTHON_MODELS_ENV = "COUNTERSIGN_PYTHON_MODELS"
# Comma-separated names of further environment variables a model's ``api_key_env`` may name.
MODEL_KEY_ENVS_ENV = "COUNTERSIGN_MODEL_KEY_ENVS"
# The key variable each provider reads by default (always allowed).
DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "inference_client": "HF_TOKEN"}


def _listed(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


def allowed_python_models() -> frozenset[str]:
    """The ``module:attr`` factories the ``python`` provider may import: those the operator
    lists in COUNTERSIGN_PYTHON_MODELS, and the platform's own default model when it is one."""
    allowed = _listed(PYTHON_MODELS_ENV)
    if os.environ.get(PROVIDER_ENV) == "python" and os.environ.get(MODEL_ID_ENV):
        allowed.add(os.environ[MODEL_ID_ENV].strip())
    return frozenset(allowed)


def allowed_model_key_envs() -> frozenset[str]:
    """The environment variables a model's ``api_key_env`` may name: the providers' defaults,
    the platform's COUNTERSIGN_MODEL_API_KEY_ENV and those listed in COUNTERSIGN_MODEL_KEY_ENVS."""
    allowed = set(DEFAULT_KEY_ENVS.values()) | _listed(MODEL_KEY_ENVS_ENV)
    if platform_key := os.environ.get(API_KEY_ENV_ENV, "").strip():
        allowed.add(platform_key)
    return frozenset(allowed)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
