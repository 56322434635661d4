"""The seed's context enhancer: the task text an agent is given.

The step's task is followed by the workflow's context and input, earlier
steps' outputs, the tools available (held ones marked) and the approval
guidelines.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SECTION = 4000

GUIDELINES = """\
- Before an irreversible, costly or external action that no held tool guards, call
  request_approval and wait for its answer; act only if it says approved.
- A held tool's call waits for a person before it runs. If it is rejected it did not run:
  do not call it again; say so in your final answer.
- Call request_approval or a held tool on its own, never together with other tools in
  the same step.
- An approver may change the arguments of a held call; the result tells you what ran.
- Use create_checkpoint before risky changes; rollback needs a person's approval."""


def _section(title: str, value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str)
    if len(text) > MAX_SECTION:
        text = text[:MAX_SECTION] + "\n... (truncated)"
    return f"## {title}\n{text}"


def enhance_task(task: str, scope: dict[str, Any], tools: list[Any], held: set[str]) -> str:
    parts = [task.strip()]
    context = {k: v for k, v in (scope.get("context") or {}).items() if k != "approvals"}
    if context:
        parts.append(_section("Workflow context", context))
    if scope.get("input"):
        parts.append(_section("Workflow input", scope["input"]))
    if scope.get("steps"):
        parts.append(_section("Outputs of earlier steps", scope["steps"]))
    if scope.get("step"):
        parts.append(_section("This step's context", scope["step"]))
    if (scope.get("context") or {}).get("approvals"):
        parts.append(_section("Decisions people made so far", scope["context"]["approvals"]))
    lines = []
    for tool in tools:
        mark = (
            " [held: a person approves each call before it runs]"
            if (tool.name in held or getattr(tool, "always_held", False))
            else ""
        )
        lines.append(f"- {tool.name}: {tool.description}{mark}")
    parts.append("## Tools available\n" + "\n".join(lines))
    parts.append("## Approval guidelines\n" + GUIDELINES)
    return "\n\n".join(parts)
