"""Settings › Model providers: an Ollama server's models, "Use this model", and
a connection test per configured provider, against a loopback Ollama."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st

from core.store.db import Database
from tests.integration.channels.conftest import free_port
from tests.integration.dashboard.conftest import (
    all_text,
    new_app,
    no_exception,
    open_page,
    sign_in,
    table_with,
)
from tests.integration.providers.loopback_ollama import FakeOllama


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    fake = FakeOllama()
    for name in (
        "COUNTERSIGN_MODEL_PROVIDER",
        "COUNTERSIGN_MODEL_ID",
        "COUNTERSIGN_MODEL_API_BASE",
        "COUNTERSIGN_OLLAMA_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_URL", fake.url)
    st.cache_data.clear()
    yield fake
    fake.close()


def test_settings_list_ollama_models_use_one_and_test_it(demo_db: Database, ollama: FakeOllama) -> None:
    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    no_exception(at)
    models = table_with(at, "name", "size", "parameters", "modified")
    assert list(models["name"]) == ["llama3.1:latest", "qwen2.5:0.5b"]
    assert list(models["size"]) == ["4.6 GB", "379.4 MB"]
    assert str(models["modified"][0]).startswith("2026-11-19 18:00:00")

    at.selectbox(key="settings.ollama.model").select("qwen2.5:0.5b").run()
    at.button(key="settings.ollama.use").click().run()
    snippets = [c.value for c in at.code]
    assert f"COUNTERSIGN_MODEL_ID=qwen2.5:0.5b\nCOUNTERSIGN_OLLAMA_URL={ollama.url}" in snippets[0]
    # The Ollama server (no default model named) and the chosen model each get a test.
    labels = [m.value for m in at.markdown if m.value.startswith("`ollama:")]
    assert labels == ["`ollama:default (Ollama server)`", "`ollama:qwen2.5:0.5b (chosen above)`"]
    assert at.button(key="settings.provider.test.0").disabled  # no model named for the server
    at.button(key="settings.provider.test.1").click().run()
    no_exception(at)
    assert [s.value for s in at.success][-1].startswith("ollama:qwen2.5:0.5b: The model answered: 'ok'")
    assert ollama.chats()[-1]["model"] == "qwen2.5:0.5b"


def test_settings_show_a_failing_ollama_plainly(
    demo_db: Database, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_URL", url)
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_MODEL", "llama3.1")
    at = sign_in(new_app(), "admin@example.com")
    open_page(at, "settings")
    no_exception(at)
    assert f"Ollama at {url}: connection refused" in [e.value for e in at.error]
    at.button(key="settings.provider.test.0").click().run()
    assert any(
        e.value.startswith(f"ollama:llama3.1: Ollama at {url}: connection refused (") for e in at.error
    )
    assert "Traceback" not in all_text(at)
