"""The composition root: how every Countersign process is put together.

The dashboard, the runner command, the gateway, the CLI and the seed's
``core.orchestrator`` facade open their database and build their runner here,
so each process runs the same tools, the same agent handler, the same outbox
dispatcher and the same alert job. Nothing below this module picks its
collaborators itself: the engine takes them as parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.store.db import Database, get_database, normalise_url

# The engine, the tools and the hooks' modules are imported where they are used,
# so a command that only reads (``open_database(reading=True)``) starts fast.
if TYPE_CHECKING:
    from core.engine.executor import TaskHandler
    from core.engine.runner import Runner
    from core.engine.tools import ToolRegistry


def install_session_hooks(*, reading: bool = False) -> None:
    """What every process's database sessions do beside their work, installed once:
    sealing every event and vote written in the trail (``core.records.trail``, whose
    flush hook is registered when it is imported; the records that write events
    import it too), outbox follow-ups and the dispatcher's wake-up (``core.outbox.writer``),
    approval-wait spans (``core.telemetry.tracing``) and recorded permission refusals
    (``core.identity.permissions``); none for a process that only reads listings
    (``reading``: they check no permission and write nothing). Installing again is
    harmless."""
    if reading:
        return
    import core.records.trail  # noqa: F401  (its flush hook seals every event and vote any process writes)
    from core.identity.permissions import register_session_hooks as refusals
    from core.outbox.writer import register_session_hooks as outbox
    from core.telemetry.tracing import register_session_hooks as tracing

    outbox()
    tracing()
    refusals()


def load_tools(registry: ToolRegistry | None = None) -> ToolRegistry:
    """The tools a runner of this process can run: the modules named in
    COUNTERSIGN_TOOL_MODULES and the demo templates' stand-ins."""
    from core.demo.tools import register_demo_tools
    from core.engine.tools import default_registry, load_tool_modules

    load_tool_modules()
    register_demo_tools(default_registry)
    return registry or default_registry


def configured_database_url() -> str:
    """The database this process uses: DATABASE_URL, else the settings' (the embedded SQLite file)."""
    import os

    from core.base.locations import DEFAULT_DATABASE_URL, env_file_present

    if url := os.environ.get("DATABASE_URL"):
        return normalise_url(url)
    if not env_file_present():  # nothing could name another: no need to load the settings
        return normalise_url(DEFAULT_DATABASE_URL)
    from core.base.config import get_settings

    return normalise_url(get_settings().database_url)


def database(url: str | None = None) -> Database:
    """The process-wide handle for ``url`` (default: the configured one), as it is:
    no migration, no tools (for a liveness check)."""
    return get_database(url or configured_database_url())


def open_database(url: str | None = None, *, migrate: bool = True, reading: bool = False) -> Database:
    """The process's database for ``url`` (default: settings), migrated, with its tools
    loaded. ``reading``: for a process that only looks (a listing command): no tools,
    no outbox or tracing hooks, so it starts without the engine's modules."""
    install_session_hooks(reading=reading)
    db = get_database(url)
    if migrate:
        db.upgrade()
    if not reading:
        load_tools()
    return db


def agent_task_handler(db: Database) -> TaskHandler:
    """Task steps run a smolagents agent (the labelled rehearsal model when no LLM
    is configured); smolagents is imported on the first task step."""
    from core.agents import LazyAgentTaskHandler

    return LazyAgentTaskHandler(db)


def beat_job(db: Database) -> None:
    """What a runner does on its alert beat: the alert rules, then the maintenance
    (spent one-time tokens that can no longer matter, ``core.ops.token_pruning``)."""
    from core.ops.alerts import evaluate_alerts
    from core.ops.token_pruning import prune_used_tokens

    evaluate_alerts(db)
    prune_used_tokens(db)


def build_runner(
    db: Database,
    *,
    dispatch_notifications: bool = True,
    evaluate_alerts: bool = True,
    task_handler: TaskHandler | None = None,
    **options: Any,
) -> Runner:
    """A runner wired like every process's: agent steps, the outbox dispatcher
    (``dispatch_notifications``) and the alert rules with the maintenance
    (``evaluate_alerts``: ``beat_job``).
    ``options`` are ``Runner``'s (concurrency, registry, lease_seconds, runner_id);
    without a ``registry`` it runs the process's tools (``load_tools``)."""
    from core.channels.dispatcher import Dispatcher
    from core.engine.runner import Runner

    install_session_hooks()
    if options.get("registry") is None:
        options["registry"] = load_tools()
    return Runner(
        db,
        task_handler=task_handler or agent_task_handler(db),
        dispatcher=Dispatcher(db) if dispatch_notifications else None,
        alert_job=beat_job if evaluate_alerts else None,
        **options,
    )


__all__ = [
    "Database",
    "agent_task_handler",
    "beat_job",
    "build_runner",
    "configured_database_url",
    "database",
    "install_session_hooks",
    "load_tools",
    "open_database",
]
