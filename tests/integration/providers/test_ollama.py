"""Ollama as a model provider: its list of models and a one-line connection
test, against a loopback Ollama that answers well, fails or stays silent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from core.agents import test_connection as check_connection
from core.agents.llm import build_model, effective_model_spec
from core.agents.ollama import list_ollama_models, ollama_base_url
from core.agents.profiles import create_profile
from core.agents.providers import configured_providers
from core.base.errors import ProviderUnreachable
from core.definitions.agents import ModelSpec
from core.identity.users import add_user
from core.store.db import Database
from tests.integration.channels.conftest import free_port
from tests.integration.providers.loopback_ollama import FakeOllama

Ollama = Callable[..., FakeOllama]


def test_lists_the_models_with_size_and_time(ollama_server: Ollama) -> None:
    fake = ollama_server()
    models = list_ollama_models(fake.url)
    assert [m.name for m in models] == ["llama3.1:latest", "qwen2.5:0.5b"]
    llama, qwen = models
    assert llama.size == 4_920_753_328 and llama.size_label == "4.6 GB"
    assert qwen.size_label == "379.4 MB" and qwen.parameter_size == "494.03M"
    assert llama.modified_at == datetime(2026, 11, 19, 18, 0, tzinfo=UTC)
    # Nanoseconds and an offset, as Ollama writes them.
    assert qwen.modified_at == datetime(2026, 11, 20, 8, 15, 2, 123456, tzinfo=UTC)
    assert fake.requests == [("GET", "/api/tags", None)]
    # A base given with /v1 (as for OpenAI clients) or a trailing slash reaches the same place.
    assert [m.name for m in list_ollama_models(fake.url + "/v1/")] == [m.name for m in models]


def test_a_refused_port_is_said_plainly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderUnreachable) as caught:
        list_ollama_models(url)
    assert str(caught.value) == f"Ollama at {url}: connection refused"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("error", 'answered HTTP 500 to /api/tags ({"error":"model runner has unexpectedly stopped"})'),
        ("garbage", "/api/tags did not answer with Ollama's list of models"),
    ],
)
def test_a_failing_server_is_said_plainly(ollama_server: Ollama, mode: str, expected: str) -> None:
    fake = ollama_server(mode)
    with pytest.raises(ProviderUnreachable) as caught:
        list_ollama_models(fake.url)
    assert str(caught.value).startswith(f"Ollama at {fake.url}: {expected}")


def test_a_silent_server_times_out(ollama_server: Ollama) -> None:
    fake = ollama_server("slow", delay=1.5)
    with pytest.raises(ProviderUnreachable) as caught:
        list_ollama_models(fake.url, timeout=0.2)
    assert str(caught.value) == f"Ollama at {fake.url}: no answer within 0.2 s"


def test_the_server_comes_from_the_spec_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ollama_base_url() == "http://127.0.0.1:11434"
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_URL", "http://gpu-box:11434/")
    assert ollama_base_url() == "http://gpu-box:11434"
    assert ollama_base_url("http://other:1/v1") == "http://other:1"
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "ollama")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "llama3.1")
    model = build_model(effective_model_spec())
    assert model.client_kwargs["base_url"] == "http://gpu-box:11434/v1"  # type: ignore[attr-defined]


def test_test_connection_sends_one_line_and_shows_the_reply(ollama_server: Ollama) -> None:
    fake = ollama_server()
    result = check_connection({"provider": "ollama", "model_id": "qwen2.5:0.5b", "api_base": fake.url})
    assert result.ok, result.message
    assert result.model == "ollama:qwen2.5:0.5b"
    assert result.message == "The model answered: 'ok'"
    [chat] = fake.chats()
    assert chat["model"] == "qwen2.5:0.5b"
    assert chat["messages"][0]["content"][0]["text"] == "Reply with: ok"


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("error", "answered HTTP 500"),
        ("garbage", "answered with something that is not an OpenAI-style reply"),
    ],
)
def test_test_connection_failures_are_plain(ollama_server: Ollama, mode: str, why: str) -> None:
    fake = ollama_server(mode)
    result = check_connection({"provider": "ollama", "model_id": "qwen2.5:0.5b", "api_base": fake.url})
    assert not result.ok
    assert result.message.startswith(f"Ollama at {fake.url}: ")
    assert why in result.message and "\n" not in result.message


def test_test_connection_to_a_refused_port_or_a_silent_server(ollama_server: Ollama) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    refused = check_connection({"provider": "ollama", "model_id": "m", "api_base": url})
    assert not refused.ok
    assert refused.message.startswith(f"Ollama at {url}: connection refused (")
    slow = ollama_server("slow", delay=1.5)
    silent = check_connection({"provider": "ollama", "model_id": "m", "api_base": slow.url}, timeout=0.2)
    assert not silent.ok
    assert silent.message.startswith(f"Ollama at {slow.url}: no answer in time (")


def test_configured_providers_are_the_environment_ollama_and_profiles(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert configured_providers(sqlite_db) == []
    monkeypatch.setenv("COUNTERSIGN_MODEL_PROVIDER", "openai")
    monkeypatch.setenv("COUNTERSIGN_MODEL_ID", "gpt-4o-mini")
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_URL", "http://127.0.0.1:11434")
    monkeypatch.setenv("COUNTERSIGN_OLLAMA_MODEL", "llama3.1")
    add_user(sqlite_db, "admin@example.com", role="admin")  # profiles are a platform admin's
    create_profile(
        sqlite_db,
        {"name": "refunds", "model_provider": "ollama", "model_id": "qwen2.5"},
        actor="admin@example.com",
    )
    create_profile(
        sqlite_db,
        {"name": "same", "model_provider": "openai", "model_id": "gpt-4o-mini"},
        actor="admin@example.com",
    )
    found = configured_providers(sqlite_db)
    assert [(p.source, p.spec.provider, p.spec.model_id) for p in found] == [
        ("environment", "openai", "gpt-4o-mini"),
        ("Ollama server", "ollama", "llama3.1"),
        ("profile refunds", "ollama", "qwen2.5"),
    ]
    assert found[1].spec == ModelSpec(
        provider="ollama", model_id="llama3.1", api_base="http://127.0.0.1:11434"
    )
