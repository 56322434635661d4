"""Settings: the models of an Ollama server and a connection test per
configured model provider (one-line prompt; the reply or the plain error)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.agents import test_connection
from core.agents.ollama import (
    OLLAMA_URL_ENV,
    ModelInfo,
    list_ollama_models,
    ollama_base_url,
    ollama_configured,
)
from core.agents.providers import ConfiguredProvider, configured_providers
from core.base.errors import ProviderUnreachable
from core.definitions.agents import ModelSpec

if TYPE_CHECKING:
    from core.store.db import Database

CHOSEN = "settings.ollama.chosen"
LISTED = "settings.ollama.listed"


@st.cache_data(ttl=30, show_spinner=False)
def _models(base_url: str) -> list[ModelInfo]:
    # Cached briefly: every widget click reruns the page. Failures are not cached.
    return list_ollama_models(base_url)


def _models_frame(models: list[ModelInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": m.name,
                "size": m.size_label,
                "parameters": m.parameter_size,
                "family": m.family,
                "modified": m.modified_at,
            }
            for m in models
        ],
        columns=["name", "size", "parameters", "family", "modified"],
    )


def _use_this_model(base_url: str, models: list[ModelInfo]) -> None:
    name = st.selectbox("Model", [m.name for m in models], key="settings.ollama.model")
    if st.button("Use this model", key="settings.ollama.use"):
        st.session_state[CHOSEN] = ModelSpec(provider="ollama", model_id=name, api_base=base_url)
    chosen = st.session_state.get(CHOSEN)
    if isinstance(chosen, ModelSpec):
        # Settings come from the environment; the page shows what to set rather than keep
        # a second source of truth.
        st.markdown(f"To make **{chosen.model_id}** the default for task steps, set:")
        st.code(
            f"COUNTERSIGN_MODEL_PROVIDER=ollama\nCOUNTERSIGN_MODEL_ID={chosen.model_id}\n"
            f"{OLLAMA_URL_ENV}={chosen.api_base}",
            language="bash",
        )
        st.markdown("or for one step or agent profile:")
        st.code(f"agent:\n  model: {{provider: ollama, model_id: {chosen.model_id}}}", language="yaml")


def ollama_section() -> None:
    st.subheader("Ollama")
    base_url = ollama_base_url()
    configured = ollama_configured()
    st.caption(
        f"Server: `{base_url}`"
        + ("" if configured else f" (the default; set `{OLLAMA_URL_ENV}` to name yours)")
    )
    if st.button(
        "Refresh the list of models" if configured else "List the models", key="settings.ollama.list"
    ):
        _models.clear()
        st.session_state[LISTED] = True
    if not (configured or st.session_state.get(LISTED)):
        return
    try:
        models = _models(base_url)
    except ProviderUnreachable as exc:
        st.error(str(exc))
        return
    if not models:
        st.info(f"Ollama at {base_url} has no models yet: `ollama pull llama3.1`.")
        return
    st.dataframe(_models_frame(models), hide_index=True, width="stretch", key="settings.ollama.models")
    _use_this_model(base_url, models)


def _providers(db: Database) -> list[ConfiguredProvider]:
    found = configured_providers(db)
    chosen = st.session_state.get(CHOSEN)
    if isinstance(chosen, ModelSpec) and all(p.spec != chosen for p in found):
        found.append(ConfiguredProvider("chosen above", chosen))
    return found


def connection_tests(db: Database) -> None:
    st.subheader("Test a connection")
    providers = _providers(db)
    if not providers:
        st.caption("No model provider is configured: task steps use the rehearsal model.")
        return
    for index, provider in enumerate(providers):
        left, right = st.columns([3, 1])
        left.markdown(f"`{provider.label}`")
        unnamed = provider.spec.provider == "ollama" and not provider.spec.model_id
        if unnamed:
            left.caption("Choose a model above (Use this model) or set COUNTERSIGN_OLLAMA_MODEL.")
        if right.button("Test connection", key=f"settings.provider.test.{index}", disabled=unnamed):
            with st.spinner(f"Asking {provider.label}…"):
                result = test_connection(provider.spec)
            if result.ok:
                st.success(f"{result.model}: {result.message} ({result.seconds:g} s)")
            else:
                st.error(f"{result.model}: {result.message}")


def model_providers_section(db: Database) -> None:
    ollama_section()
    connection_tests(db)
