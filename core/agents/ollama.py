"""Ollama: the models a server has pulled (``/api/tags``) and where it is.

Ollama serves an OpenAI-compatible API at ``<base>/v1`` (which the
``ollama`` model provider uses for agents) and its own API beside it, of
which only ``GET /api/tags`` is read here. The server is the step's
``agent.model.api_base``, else ``COUNTERSIGN_OLLAMA_URL``, else
``COUNTERSIGN_MODEL_API_BASE`` when the default provider is ``ollama``,
else ``http://127.0.0.1:11434``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from core.base.errors import ProviderUnreachable

OLLAMA_URL_ENV = "COUNTERSIGN_OLLAMA_URL"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
# The Settings page waits at most this long for a list of models.
LIST_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class ModelInfo:
    """One model an Ollama server has pulled."""

    name: str
    size: int  # bytes
    modified_at: datetime | None
    parameter_size: str = ""
    family: str = ""

    @property
    def size_label(self) -> str:
        size = float(self.size)
        for unit in ("B", "KB", "MB", "GB"):
            if size < 1024 or unit == "GB":
                return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
            size /= 1024
        return f"{size:.1f} GB"  # pragma: no cover - the loop always returns


def ollama_configured() -> bool:
    """Whether an Ollama server is named in the environment."""
    from core.definitions.agents import PROVIDER_ENV

    return bool(os.environ.get(OLLAMA_URL_ENV)) or os.environ.get(PROVIDER_ENV) == "ollama"


def ollama_base_url(api_base: str | None = None) -> str:
    """The server's root URL (no ``/v1``), from the argument or the environment."""
    from core.definitions.agents import API_BASE_ENV, PROVIDER_ENV

    env_base = os.environ.get(API_BASE_ENV) if os.environ.get(PROVIDER_ENV) == "ollama" else None
    base = (api_base or os.environ.get(OLLAMA_URL_ENV) or env_base or DEFAULT_OLLAMA_URL).strip()
    base = base.rstrip("/")
    return base.removesuffix("/v1").rstrip("/")


def openai_base_url(api_base: str | None = None) -> str:
    """Where Ollama's OpenAI-compatible API is: ``<root>/v1``."""
    return ollama_base_url(api_base) + "/v1"


def _plain_http_failure(base_url: str, exc: Exception, timeout: float) -> ProviderUnreachable:
    where = f"Ollama at {base_url}"
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnreachable(f"{where}: no answer within {timeout:g} s")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        why = "connection refused" if "refused" in text else f"cannot connect ({exc})"
        return ProviderUnreachable(f"{where}: {why}")
    return ProviderUnreachable(f"{where}: {type(exc).__name__}: {exc}")


def _modified(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Ollama writes nanoseconds; datetime takes at most microseconds.
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_ollama_models(base_url: str | None = None, timeout: float = LIST_TIMEOUT_SECONDS) -> list[ModelInfo]:
    """The models the Ollama server has pulled, by name; ``ProviderUnreachable`` if it fails."""
    root = ollama_base_url(base_url)
    try:
        response = httpx.get(f"{root}/api/tags", timeout=timeout)
    except httpx.HTTPError as exc:
        raise _plain_http_failure(root, exc, timeout) from None
    if response.status_code != 200:
        raise ProviderUnreachable(
            f"Ollama at {root}: answered HTTP {response.status_code} to /api/tags "
            f"({response.text.strip()[:200] or 'no body'})"
        )
    try:
        entries = response.json().get("models")
        if not isinstance(entries, list):
            raise ValueError("no 'models' list")
        models = [
            ModelInfo(
                name=str(m["name"]),
                size=int(m.get("size") or 0),
                modified_at=_modified(m.get("modified_at")),
                parameter_size=str((m.get("details") or {}).get("parameter_size") or ""),
                family=str((m.get("details") or {}).get("family") or ""),
            )
            for m in entries
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProviderUnreachable(
            f"Ollama at {root}: /api/tags did not answer with Ollama's list of models ({exc})"
        ) from None
    return sorted(models, key=lambda m: m.name)


__all__ = [
    "ModelInfo",
    "list_ollama_models",
    "ollama_base_url",
    "openai_base_url",
    "ollama_configured",
    "OLLAMA_URL_ENV",
    "DEFAULT_OLLAMA_URL",
]
