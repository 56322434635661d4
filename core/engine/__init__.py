"""Running workflows: the tool registry (``tools``), the step executor, the runner
loop with its claims and leases, workflow use cases (start, pause, resume,
cancel, retry), checkpoints and rollback, recovery of the seed"s async API.
"""

__all__ = ["checkpoints", "executor", "recovery", "runner", "tools", "workflows"]
