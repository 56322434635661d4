"""Running workflows: the tool registry (``tools``; ``tool`` is the public decorator),
the step executor, the runner loop with its claims and leases, workflow use cases
(start, pause, resume, cancel, retry), checkpoints and rollback, recovery of the
seed's async API.
"""

from core.engine.tools import ToolRegistry, default_registry, tool

__all__ = [
    "ToolRegistry",
    "checkpoints",
    "default_registry",
    "executor",
    "recovery",
    "runner",
    "tool",
    "tools",
    "workflows",
]
