"""Model providers as the Settings page shows them: which are configured,
and a plain sentence for why a call to one failed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.agents.llm import effective_model_spec, model_label
from core.agents.ollama import ollama_base_url, ollama_configured
from core.definitions.agents import ModelSpec

if TYPE_CHECKING:
    from core.store.db import Database

_PROVIDER_NAMES = {"openai": "OpenAI-compatible server", "ollama": "Ollama",
                   "inference_client": "Hugging Face", "litellm": "LiteLLM",
                   "transformers": "Transformers", "python": "Python model"}


@dataclass(frozen=True)
class ConfiguredProvider:
    """One model the dashboard can test: where it is configured and its settings."""

    source: str  # "environment", "Ollama server" or "profile <name>"
    spec: ModelSpec

    @property
    def label(self) -> str:
        return f"{model_label(self.spec)} ({self.source})"


def _where(spec: ModelSpec) -> str:
    name = _PROVIDER_NAMES.get(str(spec.provider), str(spec.provider))
    if spec.provider == "ollama":
        return f"Ollama at {ollama_base_url(spec.api_base)}"
    return f"{name} at {spec.api_base}" if spec.api_base else name


def plain_model_error(exc: BaseException, spec: ModelSpec) -> str:
    """One line a person can act on: where, what went wrong, and the original error."""
    # smolagents wraps the client's error (AgentGenerationError); the cause is the useful part.
    inner: BaseException = exc
    while inner.__cause__ is not None and type(inner).__module__.startswith("smolagents"):
        inner = inner.__cause__
    original = f"{type(inner).__name__}: {inner}".replace("\n", " ")
    chain = " ".join(f"{type(e).__name__} {e}" for e in _chain(inner)).lower()
    status = getattr(inner, "status_code", None)
    if "timeout" in chain or "timed out" in chain:
        why = "no answer in time"
    elif "refused" in chain:
        why = "connection refused"
    elif "connect" in chain:
        why = "cannot connect"
    elif status is not None:
        why = f"answered HTTP {status}"
    elif "json" in chain or "decode" in chain or "choices" in chain:
        # The openai client hands back the raw text of a non-JSON reply; reading it fails later.
        why = "answered with something that is not an OpenAI-style reply"
    else:
        return f"{_where(spec)}: {original}"
    return f"{_where(spec)}: {why} ({original})"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def configured_providers(db: Database | None = None) -> list[ConfiguredProvider]:
    """The environment's default model, the Ollama server's default model, and
    every distinct model an agent profile names (duplicates once)."""
    found: list[ConfiguredProvider] = []
    default = effective_model_spec()
    if default.provider != "rehearsal":
        found.append(ConfiguredProvider("environment", default))
    if ollama_configured() and default.provider != "ollama":
        model_id = os.environ.get("COUNTERSIGN_OLLAMA_MODEL") or None
        found.append(ConfiguredProvider("Ollama server", ModelSpec(
            provider="ollama", model_id=model_id, api_base=ollama_base_url())))
    if db is not None:
        from core.agents.profiles import find_spec_data, list_profiles

        for profile in list_profiles(db):
            data = find_spec_data(db, profile.name) or {}
            spec = ModelSpec.model_validate(data.get("model") or {})
            if spec.provider in (None, "rehearsal") and not spec.model_id:
                continue
            found.append(ConfiguredProvider(f"profile {profile.name}", effective_model_spec(spec)))
    unique: dict[tuple[str, str, str], ConfiguredProvider] = {}
    for entry in found:
        key = (str(entry.spec.provider), str(entry.spec.model_id), str(entry.spec.api_base))
        unique.setdefault(key, entry)
    return list(unique.values())


__all__ = ["ConfiguredProvider", "configured_providers", "plain_model_error"]
