"""Fixtures for engine tests on real databases (each test runs on SQLite and PostgreSQL
through the shared ``db`` fixture); the helpers are in tests/helpers/engine.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.engine.runner import Runner
from core.engine.tools import ToolRegistry
from core.runtime import build_runner
from core.store.db import Database
from tests.helpers.engine import Calls


@pytest.fixture
def registry(calls: Calls) -> ToolRegistry:
    """A fresh registry with recording tools (never the process-wide one)."""
    reg = ToolRegistry()

    @reg.register("do")
    def do(label: str, idempotency_key: str, value: Any = None) -> dict[str, Any]:
        calls.add("do", label=label, key=idempotency_key, value=value)
        return {"done": label, "value": value, "key": idempotency_key}

    @reg.register("undo")
    def undo(output: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        calls.add("undo", label=output.get("done"), key=idempotency_key)
        return {"undone": output.get("done")}

    return reg


@pytest.fixture
def background_runner() -> Iterator[Callable[..., Runner]]:
    """Start Runners in the background; all are stopped at the end of the test."""
    started: list[Runner] = []

    def make(
        db: Database, registry: ToolRegistry, *, idle_wait: float | None = None, **kwargs: Any
    ) -> Runner:
        runner = build_runner(db, registry=registry, **kwargs)
        if idle_wait is not None:
            runner.idle_wait = idle_wait
        runner.start()
        started.append(runner)
        return runner

    yield make
    for runner in started:
        runner.stop(timeout=10)
