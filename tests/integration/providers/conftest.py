"""Fixtures for model provider tests: a loopback Ollama per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.providers.loopback_ollama import FakeOllama


@pytest.fixture
def ollama_server() -> Iterator[Callable[..., FakeOllama]]:
    """Start loopback Ollamas (``ollama_server(mode)``); all are closed at the end."""
    started: list[FakeOllama] = []

    def make(mode: str = "ok", delay: float = 2.0) -> FakeOllama:
        fake = FakeOllama(mode, delay)
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.close()


@pytest.fixture(autouse=True)
def no_model_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test names its providers itself."""
    for name in (
        "COUNTERSIGN_MODEL_PROVIDER",
        "COUNTERSIGN_MODEL_ID",
        "COUNTERSIGN_MODEL_API_BASE",
        "COUNTERSIGN_OLLAMA_URL",
        "COUNTERSIGN_OLLAMA_MODEL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
