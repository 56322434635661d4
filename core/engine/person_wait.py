"""Asking a person before a step acts, and going on after the answer: whether
the step's gate asks, the request opened with the call rendered once (what the
approver sees is what a decision releases), the workflow parked (no thread
waits), and the decision applied (run the action, skip, go to, or fail).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from core.approvals.engine import is_approving, open_approval
from core.base.errors import ApproverOutsideTenant, ToolNotFound
from core.definitions.approval import ApprovalConfig
from core.definitions.calls import make_call
from core.definitions.gates import needs_person
from core.definitions.workflow import Step, WorkflowDefinition
from core.engine.decisions import decision_of, last_comment, proposed_action_of, released_at_once
from core.engine.executor_base import ExecutorBase
from core.engine.tasks import AwaitApproval
from core.engine.tools import render_args
from core.records import rows as store
from core.store.tables import ApprovalRequest, StepRun, Workflow, utcnow
from core.telemetry.metrics import runner_metrics

log = structlog.get_logger(__name__)

__all__ = ["PersonWait"]


class PersonWait(ExecutorBase):
    """The executor's part that asks people and applies their decisions."""

    def _asks(self, session: Session, workflow: Workflow, step: Step) -> bool:
        """Whether the step needs a person: always, never, or as its gate says for this call.

        A conditional gate (``requires_approval: {when: ...}``) is evaluated on
        the call as it would run; when it is false the step acts at once and
        the audit trail says why (``approval.not_required``). A gate that
        cannot be evaluated asks (core.definitions.gates fails closed).
        """
        gate = step.approval_gate
        if gate is None:
            return step.needs_approval
        scope = self._scope(workflow)
        try:
            arguments = render_args(step.args, scope)
        except KeyError:
            return True  # the request itself will say which value is missing
        asks, why = needs_person(gate, {**scope, "args": arguments, "tool": step.tool})
        if not asks:
            store.append_event(
                session,
                "approval.not_required",
                self.runner_id,
                workflow_id=workflow.id,
                step_name=step.name,
                data={"reason": why, "tool": step.tool, "arguments": arguments},
            )
            log.info("approval not required", step=step.name, reason=why)
        return asks

    def _request_step_approval(self, session: Session, workflow: Workflow, step: Step, run: StepRun) -> None:
        assert step.approval_config is not None
        config = step.approval_config
        scope = self._scope(workflow)
        call = None
        if step.type == "tool":
            # The call is rendered once, here: what the approver sees is what
            # a decision releases and what runs, never re-rendered later.
            assert step.tool is not None
            try:
                arguments = render_args(step.args, scope)
                schema = self.registry.get(step.tool).input_schema
            except (KeyError, ToolNotFound) as exc:
                missing = f"${{{exc.args[0]}}} has no value" if isinstance(exc, KeyError) else str(exc)
                self._fail_in_place(
                    session,
                    workflow,
                    step,
                    run,
                    f"Step {step.name!r}: cannot ask for approval of its call: {missing}.",
                )
                return
            call = make_call(step.tool, arguments, schema)
        self._wait_for_person(
            session,
            workflow,
            step,
            run,
            config,
            title=config.title or step.name.replace("_", " ").capitalize(),
            proposed_action=proposed_action_of(step, scope, config.show),
            call=call,
        )

    def _fail_in_place(
        self, session: Session, workflow: Workflow, step: Step, run: StepRun, error: str
    ) -> None:
        """Fail a step before its action could run (the caller holds the workflow's lock)."""
        run.status = "failed"
        run.error = error
        run.finished_at = utcnow()
        workflow.error = error
        runner_metrics.step(step.type, "failed")
        log.error("step failed", step=step.name, error=error, attempt=run.attempt)
        store.append_event(
            session,
            "step.failed",
            self.runner_id,
            workflow_id=workflow.id,
            step_name=step.name,
            data={"error": error, "attempt": run.attempt, "transient": False},
        )
        if workflow.status == "running":
            store.transition_workflow(session, workflow, "failed", self.runner_id, reason=error)

    def _wait_for_person(
        self,
        session: Session,
        workflow: Workflow,
        step: Step,
        run: StepRun,
        config: ApprovalConfig,
        *,
        title: str,
        proposed_action: dict[str, Any],
        call: dict[str, Any] | None = None,
    ) -> None:
        """Open the request, park the step run and the workflow (same transaction).

        A request that names a person of another tenant is never opened (nobody
        could answer it): the step fails at once, saying who and where."""
        try:
            approval = open_approval(
                session,
                config=config,
                title=title,
                requested_by=workflow.created_by,
                workflow=workflow,
                step_name=step.name,
                step_run_id=run.id,
                proposed_action=proposed_action,
                context={**workflow.context, **step.context},
                call=call,
            )
        except ApproverOutsideTenant as exc:
            self._fail_in_place(
                session, workflow, step, run, f"Step {step.name!r}: cannot ask for approval: {exc}"
            )
            return
        run.status = "waiting_approval"
        run.approval_id = approval.id
        log.info(
            "approval requested",
            approval_id=approval.id,
            approval_type=approval.approval_type,
            origin=proposed_action.get("origin", "step"),
        )
        runner_metrics.step(step.type, "waiting_approval")
        if approval.status != "pending":
            # A standing rule released the call (core.approvals.standing_rules): nobody is waited for;
            # the decision is applied, and its released call checked, as any other.
            log.info(
                "approval released by a standing rule",
                approval_id=approval.id,
                decided_by=approval.decided_by,
            )
            return
        if workflow.status == "running":
            store.transition_workflow(
                session,
                workflow,
                "waiting_approval",
                self.runner_id,
                data={"approval_id": approval.id, "step": step.name},
            )

    def _apply_decision(
        self,
        session: Session,
        workflow: Workflow,
        definition: WorkflowDefinition,
        step: Step,
        run: StepRun,
    ) -> bool | None:
        """After a decision: None to run the step's action, else the loop's answer."""
        approval = session.get(ApprovalRequest, run.approval_id)
        assert approval is not None
        if approval.status == "pending":
            store.transition_workflow(session, workflow, "waiting_approval", self.runner_id)
            return False
        decision = decision_of(session, approval)
        runner_metrics.resumed(approval.decided_at)
        log.info(
            "resuming after decision",
            approval_id=approval.id,
            outcome=approval.status,
            decided_by=approval.decided_by,
        )
        prior = workflow.context.get("approvals")
        approvals = dict(prior or {})
        approvals[step.name] = decision
        workflow.context = {**workflow.context, "approvals": approvals}
        if is_approving(approval.status):
            run.status = "running"
            return None
        action = step.on_reject.action
        run.status = "skipped" if action != "fail" else "failed"
        run.finished_at = utcnow()
        run.output = {"approval": decision}
        runner_metrics.step(step.type, run.status)
        log.info(f"step {run.status}", reason=f"approval {approval.status}", on_reject=action)
        position = workflow.current_step
        if action == "goto":
            assert step.on_reject.target is not None
            position = definition.step_index(step.on_reject.target)
        elif action != "fail":
            position += 1
        # What changed: the decision in the context, and the position.
        before: dict[str, Any] = {"context": {"approvals": prior} if prior else {}}
        after: dict[str, Any] = {"context": {"approvals": approvals}}
        if position != workflow.current_step:
            before["current_step"], after["current_step"] = workflow.current_step, position
        store.append_event(
            session,
            f"step.{run.status}",
            self.runner_id,
            workflow_id=workflow.id,
            step_name=step.name,
            before=before,
            after=after,
            data={"reason": f"approval {approval.status}", "on_reject": action},
        )
        if action == "fail":
            workflow.error = f"Step {step.name!r}: approval {approval.status}."
            store.transition_workflow(session, workflow, "failed", self.runner_id, reason=workflow.error)
            return False
        workflow.current_step_run_id = None
        workflow.current_step = position
        return True

    def _approval_summary(self, session: Session, run: StepRun) -> dict[str, Any] | None:
        if run.approval_id is None:
            return None
        approval = session.get(ApprovalRequest, run.approval_id)
        assert approval is not None
        return {
            **decision_of(session, approval),
            "origin": approval.proposed_action.get("origin", "step"),
            "comment": last_comment(session, approval.id),
        }

    def _park(self, workflow_id: str, step: Step, run_id: int, ask: AwaitApproval) -> bool:
        """A task asked a person mid-step: open the request and stop here."""
        with self.db.session() as session:
            workflow = self._locked(session, workflow_id)
            run = session.get(StepRun, run_id)
            assert run is not None
            if run.status != "running" or workflow.current_step_run_id != run_id:
                return False
            self._wait_for_person(
                session,
                workflow,
                step,
                run,
                ask.config,
                title=ask.title,
                proposed_action={**ask.proposed_action, "origin": "task"},
                call=ask.call,
            )
            return released_at_once(workflow, run)
