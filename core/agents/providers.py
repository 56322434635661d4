"""Model providers as the Settings page shows them: which are configured,
and a plain sentence for why a call to one failed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.agents.llm import model_label, plain_model_error
from core.agents.ollama import ollama_base_url, ollama_configured
from core.definitions.agents import ModelSpec, effective_model_spec

if TYPE_CHECKING:
    from core.store.db import Database


@dataclass(frozen=True)
class ConfiguredProvider:
    """One model the dashboard can test: where it is configured and its settings."""

    source: str  # "environment", "Ollama server" or "profile <name>"
    spec: ModelSpec

    @property
    def label(self) -> str:
        return f"{model_label(self.spec)} ({self.source})"


def configured_providers(db: Database | None = None) -> list[ConfiguredProvider]:
    """The environment's default model, the Ollama server's default model, and
    every distinct model an agent profile names (duplicates once)."""
    found: list[ConfiguredProvider] = []
    default = effective_model_spec()
    if default.provider != "rehearsal":
        found.append(ConfiguredProvider("environment", default))
    if ollama_configured() and default.provider != "ollama":
        model_id = os.environ.get("COUNTERSIGN_OLLAMA_MODEL") or None
        found.append(
            ConfiguredProvider(
                "Ollama server", ModelSpec(provider="ollama", model_id=model_id, api_base=ollama_base_url())
            )
        )
    if db is not None:
        from core.agents.profiles import find_spec_data, list_profiles

        for profile in list_profiles(db):
            data = find_spec_data(db, profile.name) or {}
            try:
                spec = ModelSpec.model_validate(data.get("model") or {})
            except ValidationError:
                # Stored before the platform's model rules refused it: its agents fail to
                # build too, and it is not tested (nothing of it is imported or sent).
                continue
            if spec.provider in (None, "rehearsal") and not spec.model_id:
                continue
            found.append(ConfiguredProvider(f"profile {profile.name}", effective_model_spec(spec)))
    unique: dict[tuple[str, str, str], ConfiguredProvider] = {}
    for entry in found:
        key = (str(entry.spec.provider), str(entry.spec.model_id), str(entry.spec.api_base))
        unique.setdefault(key, entry)
    return list(unique.values())


__all__ = ["ConfiguredProvider", "configured_providers", "plain_model_error"]
