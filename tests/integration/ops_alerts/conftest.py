"""Alert tests reuse the channels' loopback servers and clean channel environment."""

from __future__ import annotations

from typing import Any

from core.engine import workflows as ops
from core.runtime import build_runner
from core.store.db import Database
from core.store.tables import Workflow
from tests.integration.channels.conftest import (  # noqa: F401  (fixtures)
    channel_env,
    slack_api,
    smtp,
    webhook_receiver,
)
from tests.integration.dashboard.conftest import demo_db, demo_template  # noqa: F401  (fixtures)

# deploy_release needs a version: without one the step fails at once.
FAILING_STEPS: list[dict[str, Any]] = [
    {"name": "deploy", "type": "tool", "tool": "deploy_release", "args": {"service": "api"}}
]


def failed_workflow(db: Database, name: str = "Release api") -> Workflow:

    workflow = ops.create_workflow(db, {"name": name, "steps": FAILING_STEPS})
    build_runner(db, dispatch_notifications=False).run_until_idle()
    workflow = ops.get_workflow(db, workflow.id)
    assert workflow.status == "failed", workflow.error
    return workflow
