"""Agent task steps: run a smolagents agent, pause it durably, resume it.

``AgentTaskHandler`` is the runner's default task handler. A run that needs a
person (``request_approval``, a held tool, ``rollback``) stops before the
action: its memory and state are saved in ``agent_runs`` and
``executor.AwaitApproval`` is raised, so the executor opens the request and
releases the workflow; no thread waits. After the decision the executor
calls the handler again for the same step run, in whatever process; the run
is rebuilt from the saved memory and goes on with the decision as the held
call's result. Memory is also saved after every agent step, so a runner
killed mid-run is continued from the last finished step.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from smolagents import CodeAgent
from smolagents.agents import ActionStep, FinalAnswerStep
from smolagents.memory import TaskStep
from smolagents.monitoring import LogLevel
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.agents import execution_logs
from core.agents.context import enhance_task
from core.agents.execution_logs import LogContext, LogEntry
from core.agents.llm import build_model, model_label
from core.agents.memory import dump_memory, load_memory
from core.agents.policy import (
    CountersignToolCallingAgent,
    approval_request,
    decision_observation,
    held_call,
)
from core.agents.profiles import stored_profiles
from core.agents.rehearsal import RehearsalModel
from core.agents.sandbox import guarded_executor
from core.agents.tools import (
    GuardedTool,
    HoldForApproval,
    RollbackRequested,
    RunContext,
    ToolTampering,
    build_tools,
    check_arguments,
    run_released,
)
from core.agents.tracing import span
from core.base.errors import CallNotReleased
from core.base.states import APPROVING_OUTCOMES
from core.definitions.agents import AgentSpec, resolve_spec
from core.definitions.calls import verify_call
from core.engine.executor import AwaitApproval, TaskRequest
from core.records import rows as store
from core.store.tables import AgentRun, utcnow
from core.tenants.registry import model_spec_for_workflow

if TYPE_CHECKING:
    from core.store.db import Database

log = structlog.get_logger(__name__)
MAX_EVENT_TEXT = 2000


def _clip(value: Any) -> Any:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_EVENT_TEXT else text[:MAX_EVENT_TEXT] + " ..."


def _rendered(text: str, scope: dict[str, Any]) -> str:
    """The task with its ``${input.x}`` references filled in (left as is if unknown)."""
    from core.engine.tools import render_args

    try:
        return str(render_args(text, scope))
    except KeyError:
        return text


class AgentTaskHandler:
    """``TaskRequest -> dict``: the executor's hook for task steps."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, request: TaskRequest) -> dict[str, Any]:
        agent = request.step.agent
        spec = resolve_spec(agent, stored_profiles(self.db) if isinstance(agent, str) else None)
        model_spec = model_spec_for_workflow(self.db, request.workflow_id, spec.model)
        with span(
            "countersign.agent.run",
            workflow_id=request.workflow_id,
            step=request.step.name,
            agent_type=spec.type,
            model=model_label(model_spec),
        ):
            return _Run(self.db, request, spec).execute()


class _Run:
    """One call of the handler for one step run."""

    def __init__(self, db: Database, request: TaskRequest, spec: AgentSpec) -> None:
        self.db = db
        self.request = request
        self.spec = spec
        # A tenant's workflow: platform, then tenant, then user settings (core.tenants.registry).
        self.model_spec = model_spec_for_workflow(db, request.workflow_id, spec.model)
        self.label = model_label(self.model_spec)
        self.rehearsal = self.model_spec.provider == "rehearsal"
        self.actor = f"agent:{request.step.name}"
        self.agent_name = request.step.agent if isinstance(request.step.agent, str) else spec.type

    # -- the row in agent_runs ------------------------------------------------------

    def _load_row(self) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.scalars(
                select(AgentRun).where(
                    AgentRun.workflow_id == self.request.workflow_id,
                    AgentRun.step_run_id == self.request.step_run_id,
                )
            ).first()
            if row is None:
                row = AgentRun(
                    workflow_id=self.request.workflow_id,
                    step_run_id=self.request.step_run_id,
                    step_name=self.request.step.name,
                    status="new",
                    model=self.label,
                    memory={},
                    state={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                session.add(row)
                session.flush()
            self.log_context = LogContext(
                tenant=execution_logs.workflow_tenant(session, self.request.workflow_id),
                workflow_id=self.request.workflow_id,
                step_name=self.request.step.name,
                agent=self.agent_name,
            )
            return {
                "id": row.id,
                "status": row.status,
                "memory": dict(row.memory or {}),
                "state": dict(row.state or {}),
                "pending_call": row.pending_call,
            }

    def _save(
        self,
        *,
        status: str,
        event: str | None = None,
        data: dict[str, Any] | None = None,
        pending_call: dict[str, Any] | None = None,
        approval_id: str | None = None,
        logs: list[LogEntry] | None = None,
    ) -> None:
        with self.db.session() as session:
            # Execution log rows commit with the event they belong to.
            execution_logs.record_all(session, self.log_context, logs or [])
            row = session.get(AgentRun, self.row_id, with_for_update=True)
            assert row is not None
            row.status = status
            row.model = self.label
            row.memory = dump_memory(self.agent.memory.steps)
            row.state = self._state()
            row.pending_call = pending_call
            if approval_id is not None:
                row.approval_id = approval_id
            row.updated_at = utcnow()
            self._record_not_required(session)
            if event is not None:
                store.append_event(
                    session,
                    event,
                    self.actor,
                    workflow_id=self.request.workflow_id,
                    step_name=self.request.step.name,
                    data={
                        "step_run_id": self.request.step_run_id,
                        "model": self.label,
                        "rehearsal": self.rehearsal,
                        **(data or {}),
                    },
                )

    def _record_not_required(self, session: Session) -> None:
        """Held calls whose gate was false ran at once: the trail says so, with the reason
        ("not required: <expression> was false"), as for a step's gate."""
        with self.ctx.lock:
            ran, self.ctx.not_required[:] = list(self.ctx.not_required), []
        for call in ran:
            store.append_event(
                session,
                "approval.not_required",
                self.actor,
                workflow_id=self.request.workflow_id,
                step_name=self.request.step.name,
                data={**call, "origin": "agent", "step_run_id": self.request.step_run_id},
            )

    def _state(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "calls_made": self.ctx.calls_made,
            "records": self.ctx.records,
            "applied": self.applied,
            "decisions": self.decisions,
            "output": self.output,
        }

    # -- building the agent -----------------------------------------------------------

    def _build(self, state: dict[str, Any]) -> None:
        request, spec = self.request, self.spec
        plan = [dict(c) for c in request.step.plan or []]
        from core.engine.tools import render_args

        for call in plan:
            call["args"] = render_args(call.get("args", {}), request.scope)
        names = list(dict.fromkeys([*spec.tools, *spec.held_tools, *[c["tool"] for c in plan]]))
        # Held tools are fixed here, for the whole run; the tools' guard keeps them.
        self.ctx = RunContext(
            self.db,
            request.registry,
            request.workflow_id,
            request.step.name,
            request.idempotency_key,
            held=frozenset(spec.held_tools),
            gates=dict(spec.held_when),
            gate_scope={k: request.scope.get(k) for k in ("input", "context", "steps", "workflow")},
            calls_made=int(state.get("calls_made", 0)),
            records=list(state.get("records", [])),
            run_id=str(request.step_run_id),
        )
        self.logged_records = len(self.ctx.records)  # tool calls already in execution_logs
        self.tools = build_tools(self.ctx, names)
        task_text = _rendered(
            request.step.task or request.step.description or request.step.name, request.scope
        )
        if self.rehearsal:
            answer = f"Rehearsed: {task_text.strip()}"
            model: Any = RehearsalModel(plan, answer, code=spec.type == "code")
        else:
            model = build_model(self.model_spec)
        common: dict[str, Any] = {
            "tools": self.tools,
            "model": model,
            "max_steps": spec.max_steps,
            "instructions": spec.instructions,
            "verbosity_level": LogLevel.OFF,
        }
        if spec.type == "code":
            self.agent: Any = CodeAgent(
                additional_authorized_imports=spec.authorized_imports,
                executor_type=spec.executor,
                # Ours on the local executor: introspection refused (core.agents.sandbox).
                executor=guarded_executor(spec.authorized_imports, spec.executor, self.ctx),
                **common,
            )
        else:
            self.agent = CountersignToolCallingAgent(**common)
        if isinstance(model, RehearsalModel):
            model.memory_steps = lambda: self.agent.memory.steps
        held = set(self.ctx.held)
        self.task = state.get("task") or enhance_task(task_text, request.scope, self.tools, held)
        self.applied: list[str] = list(state.get("applied", []))
        self.decisions: list[dict[str, Any]] = list(state.get("decisions", []))
        self.output: dict[str, Any] | None = state.get("output")

    def _tool(self, name: str) -> GuardedTool | None:
        return next((t for t in self.tools if t.name == name), None)

    # -- the run ------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        row = self._load_row()
        self.row_id = row["id"]
        fresh = row["status"] in ("new", "failed") or not row["memory"].get("steps")
        self._build({} if row["status"] in ("new", "failed") else row["state"])
        if row["status"] == "completed" and self.output is not None:
            return self.output  # finished before a crash; the executor had not recorded it
        steps = [] if fresh else load_memory(row["memory"])
        if row["status"] == "suspended":
            pending = row["pending_call"] or {}
            decision = self.request.decision
            if decision is None or decision.get("approval_id") in self.applied:
                # Parked but the request was never opened (crash in between): ask again.
                self.agent.memory.steps = steps
                raise self._ask(pending)
            self.agent.memory.steps = steps
            result = self._apply_decision(pending, decision)
            if result is not None:
                return result
            fresh = False
        elif not fresh:
            self.agent.memory.steps = steps
            self._save(status="running", event="agent.continued", data={"after_steps": self._action_count()})
        if fresh:
            self._save(
                status="running",
                event="agent.started",
                data={
                    "agent_type": self.spec.type,
                    "tools": [t.name for t in self.tools],
                    "held_tools": sorted(self.ctx.held),
                    "max_steps": self.spec.max_steps,
                },
            )
        return self._loop(fresh)

    def _action_count(self) -> int:
        return sum(isinstance(s, ActionStep) for s in self.agent.memory.steps)

    def _loop(self, fresh: bool) -> dict[str, Any]:
        agent = self.agent
        if fresh:
            stream = agent.run(self.task, stream=True, max_steps=self.spec.max_steps)
        else:
            remaining = max(1, self.spec.max_steps - self._action_count())
            stream = agent.run(self.task, stream=True, reset=False, max_steps=remaining)
            # run() appends the task again; the saved memory already has it.
            if agent.memory.steps and isinstance(agent.memory.steps[-1], TaskStep):
                agent.memory.steps.pop()
        offset = 0 if fresh else self._action_count()
        final: Any = None
        try:
            for event in stream:
                if isinstance(event, ActionStep):
                    self._record_step(event, offset)
                    if self.ctx.tampered is not None:  # even if the code went on (finally:)
                        stream.close()
                        raise self.ctx.tampered
                    if self.ctx.hold is not None:
                        stream.close()
                        raise self._pause(self.ctx.hold)
                elif isinstance(event, FinalAnswerStep):
                    final = event.output
        except ToolTampering as tampering:
            raise self._refuse(self.ctx.tampered or tampering) from None
        except HoldForApproval as hold:
            raise self._pause(hold) from None
        except AwaitApproval:
            raise
        except Exception as exc:
            self._save(
                status="failed",
                event="agent.failed",
                data={"error": f"{type(exc).__name__}: {exc}"[:MAX_EVENT_TEXT]},
                logs=[*self._tool_logs(), execution_logs.error_entry(exc)],
            )
            raise
        return self._finish(final)

    def _record_step(self, step: ActionStep, offset: int) -> None:
        usage = step.token_usage
        data = {
            "step_number": offset + step.step_number,
            "model_output": _clip(step.model_output),
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in step.tool_calls or []],
            "code": step.code_action,
            "observations": _clip(step.observations),
            "error": str(step.error) if step.error else None,
            "token_usage": {"input": usage.input_tokens, "output": usage.output_tokens} if usage else None,
            "duration": round(step.timing.duration or 0.0, 4),
            "final": step.is_final_answer,
        }
        if self.ctx.hold is not None:
            data["paused_for"] = self.ctx.hold.tool
        self._save(
            status="running",
            event="agent.step",
            data=data,
            logs=[*execution_logs.step_entries(data), *self._tool_logs()],
        )

    def _tool_logs(self) -> list[LogEntry]:
        """tool_call rows for the calls that ran since the last ones logged."""
        entries = execution_logs.tool_entries(self.ctx.records[self.logged_records :])
        self.logged_records = len(self.ctx.records)
        return entries

    def _finish(self, final: Any) -> dict[str, Any]:
        usage = {"input": 0, "output": 0}
        for step in self.agent.memory.steps:
            if isinstance(step, ActionStep) and step.token_usage:
                usage["input"] += step.token_usage.input_tokens
                usage["output"] += step.token_usage.output_tokens
        result = final if isinstance(final, dict | list | int | float | bool) or final is None else str(final)
        self.output = {
            "result": result,
            "model": self.label,
            "rehearsal": self.rehearsal,
            "agent": self.spec.type,
            "steps": self._action_count(),
            "token_usage": usage,
            "tool_calls": self.ctx.records,
            "decisions": self.decisions,
        }
        self._save(
            status="completed",
            event="agent.completed",
            data={"result": _clip(result), "steps": self.output["steps"], "token_usage": usage},
            logs=[*self._tool_logs(), execution_logs.final_entry(result, self.output["steps"])],
        )
        return self.output

    # -- pausing and resuming -------------------------------------------------------------

    def _pause(self, hold: HoldForApproval) -> AwaitApproval:
        pending: dict[str, Any] = {"tool": hold.tool, "arguments": hold.arguments, "kind": hold.kind}
        executor = getattr(self.agent, "python_executor", None)
        logs = getattr(executor, "state", {}).get("_print_outputs") if executor else None
        if logs is not None and str(logs):
            pending["logs"] = str(logs)
        self._save(
            status="suspended",
            event="agent.paused",
            pending_call=pending,
            data={"tool": hold.tool, "arguments": hold.arguments, "kind": hold.kind},
            logs=[*self._tool_logs(), execution_logs.held_entry(hold.tool, hold.arguments, hold.kind)],
        )
        return self._ask(pending)

    def _refuse(self, tampering: ToolTampering) -> CallNotReleased:
        """The agent's code tampered with a tool: nothing more runs and the step fails
        (``CallNotReleased``: the executor records ``call.refused`` and does not retry)."""
        error = f"ToolTampering: {tampering}"
        self._save(
            status="failed",
            event="agent.failed",
            data={"error": error[:MAX_EVENT_TEXT]},
            logs=[*self._tool_logs(), execution_logs.error_entry(tampering)],
        )
        return CallNotReleased(error)

    def _ask(self, pending: dict[str, Any]) -> AwaitApproval:
        tool = self._tool(pending.get("tool", ""))
        config, title, action = approval_request(self.request, self.spec, pending, tool)
        return AwaitApproval(
            config, title=title, proposed_action=action, call=held_call(self.request, pending, tool)
        )

    def _apply_decision(self, pending: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any] | None:
        """Turn the decision into the held call's result; None to go on with the loop."""
        tool_name = pending.get("tool", "")
        tool = self._tool(tool_name)
        status = decision.get("status", "")
        summary = {k: decision.get(k) for k in ("status", "decided_by", "comment", "approval_id")}
        summary["tool"] = tool_name
        ran = False
        outcome: Any = None
        if pending.get("kind") == "request" or status not in APPROVING_OUTCOMES or tool is None:
            observation = decision_observation(pending, decision)
        else:
            arguments, problem = _released_arguments(pending, decision)
            if problem is None:
                try:
                    check_arguments(tool, arguments)
                except (TypeError, ValueError) as exc:
                    problem = f"the changed arguments do not fit {tool_name}'s inputs: {exc}"
            if problem is not None:
                observation = (
                    f"The call to {tool_name} did NOT run: {problem}. Approver: {decision.get('decided_by')}."
                )
                summary["refused"] = problem
                with self.db.session() as session:
                    store.append_event(
                        session,
                        "agent.call_refused",
                        self.actor,
                        workflow_id=self.request.workflow_id,
                        step_name=self.request.step.name,
                        data={"tool": tool_name, "arguments": arguments, "problem": problem},
                    )
            else:
                try:
                    # The released digest goes to the run's private release store; the
                    # tool's guard runs this call only if it is the released one.
                    outcome = run_released(tool, arguments)
                    ran = True
                    observation = decision_observation(pending, decision, arguments=arguments, result=outcome)
                except RollbackRequested as rollback:
                    done, why = self._rollback(rollback, summary)
                    if done is not None:
                        return done
                    observation = f"The rollback did not happen: {why}"
                    summary["refused"] = why
                except Exception as exc:  # noqa: BLE001 - the model sees it, as smolagents does
                    observation = (
                        f"Error executing tool '{tool_name}' with arguments "
                        f"{arguments}: {type(exc).__name__}: {exc}"
                    )
                summary["arguments"] = arguments
        summary["ran"] = ran
        self._set_observation(pending, observation)
        self.applied.append(str(decision.get("approval_id")))
        self.decisions.append(summary)
        self._save(
            status="running",
            event="agent.resumed",
            approval_id=decision.get("approval_id"),
            data={"decision": summary, "observation": _clip(observation)},
            logs=self._tool_logs(),
        )
        return None

    def _set_observation(self, pending: dict[str, Any], observation: str) -> None:
        steps = [s for s in self.agent.memory.steps if isinstance(s, ActionStep)]
        if not steps:
            return
        step = steps[-1]
        if self.spec.type == "code":
            before = f"Execution logs before the pause:\n{pending['logs']}\n" if pending.get("logs") else ""
            observation = (
                f"{before}{observation}\nYour code stopped at this call: "
                "nothing after it ran. Continue from here."
            )
        step.observations = observation
        step.error = None

    def _rollback(
        self, request: RollbackRequested, summary: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str]:
        """An approved rollback: pause the workflow, let go of it, roll it back."""
        from core.base.errors import CheckpointNotFound
        from core.engine.checkpoints import find_checkpoint, rollback

        with self.db.session() as session:
            try:
                find_checkpoint(session, self.request.workflow_id, request.checkpoint)
            except CheckpointNotFound as exc:
                return None, str(exc)
            workflow = store.get_workflow(session, self.request.workflow_id, for_update=True)
            if workflow.status == "running":
                store.transition_workflow(
                    session, workflow, "paused", self.actor, reason=f"agent rollback: {request.reason}"
                )
            # This runner lets go: the executor finds the lease gone and stops.
            workflow.lease_owner = None
            workflow.lease_expires_at = None
        self.decisions.append({**summary, "ran": True})
        self.output = {
            "result": f"rolled back to {request.checkpoint or 'the latest checkpoint'}",
            "model": self.label,
            "rehearsal": self.rehearsal,
            "agent": self.spec.type,
            "decisions": self.decisions,
        }
        self._save(
            status="rolled_back",
            event="agent.rolled_back",
            data={"checkpoint": request.checkpoint, "reason": request.reason},
        )
        rollback(
            self.db,
            self.request.registry,
            self.request.workflow_id,
            checkpoint_name=request.checkpoint,
            reason=request.reason,
            actor=self.actor,
        )
        return self.output, ""


def _released_arguments(
    pending: dict[str, Any], decision: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """The arguments the decision released for the held call, or why none may run."""
    proposed = dict(pending.get("arguments") or {})
    if "call" not in decision:
        # A request opened before requests kept their call: only the call as proposed
        # may run; an edit given then cannot be released.
        data = decision.get("data") or {}
        if "arguments" in data or "tool" in data:
            return proposed, (
                "this request was opened before edits were released with the "
                "call; the edited call cannot run, ask again"
            )
        return proposed, None
    try:
        if decision.get("call_refused"):
            raise CallNotReleased(decision["call_refused"])
        _, arguments = verify_call(decision.get("call"), tool=str(pending.get("tool", "")))
    except CallNotReleased as exc:
        return proposed, str(exc)
    return arguments, None


def agent_task_handler(db: Database) -> AgentTaskHandler:
    return AgentTaskHandler(db)


__all__ = ["AgentTaskHandler", "agent_task_handler"]
