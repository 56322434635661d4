"""What a ``task`` step's handler gets and may raise: the request (``TaskRequest``),
``AwaitApproval`` to park the step until a person answers, and the labelled
stand-in handler used when no agent is configured (``rehearsal_task``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.definitions.approval import ApprovalConfig
from core.definitions.workflow import Step
from core.engine.tools import ToolContext, ToolRegistry, render_args

__all__ = ["AwaitApproval", "TaskHandler", "TaskRequest", "rehearsal_task"]


@dataclass(frozen=True)
class TaskRequest:
    """What a task handler gets: the step and everything it may read.

    ``step_run_id`` identifies this execution of the step (an agent keeps its
    saved memory under it). ``decision`` is set when the handler is called
    again after a person answered the approval it asked for.
    """

    workflow_id: str
    step: Step
    scope: dict[str, Any]
    idempotency_key: str
    registry: ToolRegistry
    step_run_id: int = 0
    decision: dict[str, Any] | None = None


class AwaitApproval(Exception):
    """Raised by a task handler to park the step until a person answers.

    The executor opens the approval request, marks the step and workflow as
    waiting, and releases the workflow: no thread waits. After the decision
    (whatever it is) the handler is called again for the same step run with
    ``TaskRequest.decision`` set; it decides what a rejection means.
    """

    def __init__(
        self,
        config: ApprovalConfig,
        *,
        title: str,
        proposed_action: dict[str, Any] | None = None,
        call: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.config = config
        self.title = title
        self.proposed_action = proposed_action or {}
        # The call the request guards (core.definitions.calls.make_call), None for a question.
        self.call = call


TaskHandler = Callable[[TaskRequest], dict[str, Any]]


def rehearsal_task(request: TaskRequest) -> dict[str, Any]:
    """Stand-in for an agent when none is configured: deterministic, labelled.

    It runs the step's declared ``plan`` of tool calls in order and reports
    them; it never pretends to be a language model.
    """
    calls = []
    for index, call in enumerate(request.step.plan or []):
        args = render_args(call.get("args", {}), request.scope)
        result = request.registry.call(
            call["tool"],
            args,
            ToolContext(request.workflow_id, request.step.name, f"{request.idempotency_key}/{index}"),
        )
        calls.append({"tool": call["tool"], "args": args, "result": result})
    return {
        "result": f"Rehearsed: {request.step.task or request.step.name}",
        "rehearsal": True,
        "tool_calls": calls,
    }
