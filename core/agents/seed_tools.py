"""The SmolAgent orchestrator's tool classes, under the seed's names.

Seeds 000-002 name the built-in agent tools ``ApprovalRequiredTool`` (also
drawn as ``ApprovalTool`` and "Approval Request Tool"), ``CheckpointTool``
and ``RollbackTool``. Countersign's tools (``core.agents.tools``) do those
jobs, so the seed's names are the same classes, not copies: a task step's
agent gets exactly these, and ``isinstance`` checks written against either
name hold.

They are ``smolagents.Tool`` subclasses built on a ``RunContext`` (the
workflow, step and database of one agent run); an agent gets them through a
workflow's ``task`` step or ``orchestrator.agent.run(task)``, where a call
that needs a person stops the run durably until the decision. Their inputs
are listed in docs/switching.md beside the seed's.
"""

from __future__ import annotations

from core.agents.tools import CreateCheckpointTool, GuardedTool, RequestApprovalTool
from core.agents.tools import RollbackTool as RollbackTool

# Seed 000: "ApprovalRequiredTool - Request human approval (title, description, type)".
ApprovalRequiredTool = RequestApprovalTool
# Seed 002's architecture drawing ("ApprovalTool") and seed 001's "Approval Request Tool".
ApprovalTool = RequestApprovalTool
ApprovalRequestTool = RequestApprovalTool
# Seed 000: "CheckpointTool - Create state snapshots (name, description, step)".
CheckpointTool = CreateCheckpointTool

# The tools every agent gets, by the name a model calls them.
SEED_TOOLS: dict[str, type[GuardedTool]] = {
    ApprovalRequiredTool.name: ApprovalRequiredTool,
    CheckpointTool.name: CheckpointTool,
    RollbackTool.name: RollbackTool,
}

__all__ = [
    "ApprovalRequestTool",
    "ApprovalRequiredTool",
    "ApprovalTool",
    "CheckpointTool",
    "RollbackTool",
    "SEED_TOOLS",
]
