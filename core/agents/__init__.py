"""smolagents inside workflows: agent task steps with durable pause and resume.

Importing this package is cheap; smolagents is imported when an agent runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.definitions.agents import AgentSpec, ModelSpec, register_profile, resolve_spec

if TYPE_CHECKING:
    from core.agents.handler import AgentTaskHandler
    from core.agents.llm import ConnectionResult
    from core.engine.executor import TaskRequest
    from core.store.db import Database


class LazyAgentTaskHandler:
    """Imports smolagents on the first task step, so runners of tool-only
    workflows (and every CLI command) start fast."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._handler: AgentTaskHandler | None = None

    def __call__(self, request: TaskRequest) -> dict[str, Any]:
        if self._handler is None:
            from core.agents.handler import AgentTaskHandler

            self._handler = AgentTaskHandler(self.db)
        return self._handler(request)


def agent_task_handler(db: Database) -> LazyAgentTaskHandler:
    """The runner's default task handler (runs a smolagents agent per task step)."""
    return LazyAgentTaskHandler(db)


def test_connection(
    spec: ModelSpec | dict[str, Any] | None = None, *, timeout: float = 15.0
) -> ConnectionResult:
    """Ask the configured model a tiny question; a plain result for the Settings page."""
    from core.agents.llm import test_connection as _test

    return _test(spec, timeout=timeout)


test_connection.__test__ = False  # type: ignore[attr-defined]

__all__ = [
    "AgentSpec",
    "ModelSpec",
    "agent_task_handler",
    "register_profile",
    "resolve_spec",
    "test_connection",
]
