"""The SmolAgent orchestrator's comprehensive demo, on Countersign.

    python examples/demo_application.py            # the embedded SQLite database
    python examples/demo_application.py --ask      # you answer each request at the prompt
    DATABASE_URL=postgresql://... python examples/demo_application.py

Four scenarios, each a workflow from core/demo/templates/ run through the awaitable
seed API (``core.orchestrator_async.SmolAgentOrchestrator``), with agents on the
labelled rehearsal model (no LLM is called):

1. E-commerce order processing: a budget approval before the charge, then an
   agent whose ``send_confirmation`` call waits for a person;
2. Multi-level budget approval: manager, then director, then CFO;
3. Deployment pipeline with rollback: a change form, the deploy, then a
   rollback that compensates the release;
4. Document review with several approvers: two of three must approve.

Each request is answered by the person it was sent to: by the demo itself
(printed as it goes), or with ``--ask`` by you at the prompt. The workflows
stay in the database: the dashboard (``streamlit run app.py``) shows them,
with their timelines and decisions, and its demo accounts can sign in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.base.config import get_settings  # noqa: E402
from core.base.logging import configure_logging  # noqa: E402
from core.definitions.definition_text import load_definition_file  # noqa: E402
from core.demo.scenarios import DEMO_INPUTS, DEMO_PASSWORD, DEMO_USERS, template_path  # noqa: E402
from core.ops.settings_report import masked_url  # noqa: E402
from core.orchestrator_async import SmolAgentOrchestrator  # noqa: E402
from core.store.tables import ApprovalRequest  # noqa: E402

REQUESTER = "agent@example.com"
# What each person answers in the demo (decision, form data).
Answer = tuple[str, dict[str, Any] | None]
Answerer = Callable[[ApprovalRequest, str], Answer]


def say(text: str = "") -> None:
    print(text, flush=True)


def scripted(answers: dict[str, Answer]) -> Answerer:
    """The demo's people: approve, with the form data each scenario needs."""

    def answer(request: ApprovalRequest, person: str) -> Answer:
        return answers.get(person, ("approve", None))

    return answer


def at_the_prompt(fallback: Answerer) -> Answerer:
    """``--ask``: you decide; forms are filled with the demo's data."""

    def answer(request: ApprovalRequest, person: str) -> Answer:
        decision, data = fallback(request, person)
        while True:
            reply = input(f"    {person}: approve or reject? [A/r] ").strip().lower() or "a"
            if reply in ("a", "approve", "r", "reject"):
                break
        return ("approve" if reply.startswith("a") else "reject", data)

    return answer


def show_request(request: ApprovalRequest) -> None:
    say(f"  ? {request.title} [{request.approval_type}] -> {', '.join(request.approvers)}")
    facts = {k: v for k, v in (request.context_data or {}).items() if k != "form_fields"}
    if facts:
        say(f"    facts: {json.dumps(facts, default=str)}")
    if request.proposed_action and request.proposed_action.get("tool"):
        say(
            f"    the agent wants to call {request.proposed_action['tool']}"
            f"({json.dumps(request.proposed_action.get('args'), default=str)})"
        )


async def run_scenario(
    orchestrator: SmolAgentOrchestrator, template: str, title: str, answer: Answerer
) -> dict[str, Any]:
    """Start one template, answer every request as its people would, run it to its end."""
    definition = load_definition_file(template_path(template))
    workflow = await orchestrator.create_workflow(
        name=definition.name or template,
        description=definition.description,
        workflow_definition=definition,
        input_data=DEMO_INPUTS[template],
        created_by=REQUESTER,
    )
    say(f"\n== {title}: {workflow.name} ({workflow.id})")
    report = await orchestrator.execute_workflow(workflow.id, wait=False)
    while report["status"] == "waiting_approval":
        for pending in report["pending_approvals"]:
            request = await orchestrator.approval_engine.get(pending["id"])
            show_request(request)
            voted = {r.approver for r in await orchestrator.approval_engine.responses(request.id)}
            person = next(a for a in request.approvers if a not in voted)
            decision, data = answer(request, person)
            decided = await orchestrator.approval_engine.respond_to_approval(
                request.id, person, decision, data, comment="from the demo", channel="demo"
            )
            say(
                f"    {person}: {decision}"
                + (f" {json.dumps(data)}" if data else "")
                + f" -> request {decided.status}"
            )
        report = await orchestrator.execute_workflow(workflow.id, wait=False)
    say(
        f"  = {report['status']}: {report['progress']['completed']} of "
        f"{report['progress']['total']} steps" + (f" ({report['error']})" if report["error"] else "")
    )
    return report


async def demo(database_url: str | None, answer_at_prompt: bool) -> dict[str, str]:
    orchestrator = SmolAgentOrchestrator(db_session=database_url, model_config={"provider": "rehearsal"})
    await add_demo_users(orchestrator)
    say(f"Countersign demo on {masked_url(orchestrator.db.url)}; agents use the rehearsal model (no LLM).")

    def people(answers: dict[str, Answer]) -> Answerer:
        return at_the_prompt(scripted(answers)) if answer_at_prompt else scripted(answers)

    outcomes: dict[str, str] = {}
    order = await run_scenario(
        orchestrator, "order_processing", "1. E-commerce order processing with approvals", people({})
    )
    if order["status"] == "completed":
        charge = order["step_outputs"]["payment_approval"]
        say(
            f"  charged {charge['amount']} {charge['currency']} ({charge['charge_id']}); "
            f"confirmation: {order['step_outputs']['confirm_order']['result']}"
        )
    outcomes["order_processing"] = order["status"]

    budget = await run_scenario(
        orchestrator, "budget_multilevel", "2. Multi-level budget approval", people({})
    )
    outcomes["budget_multilevel"] = budget["status"]

    deploy = await run_scenario(
        orchestrator,
        "deployment_pipeline",
        "3. Deployment pipeline with rollback",
        people({"devops@example.com": ("approve", {"change_ticket": "CHG-1234", "window": "tonight"})}),
    )
    outcomes["deployment_pipeline"] = deploy["status"]
    if deploy["status"] == "completed":
        say("  the error rate went up after the deploy: rolling back")
        restored = await orchestrator.rollback_workflow(
            checkpoint_name="before:deployment_approval",
            reason="error rate up after deploy",
            workflow_id=deploy["id"],
        )
        result = orchestrator.last_rollback
        assert result is not None
        for compensation in result.compensations:
            if compensation.get("tool"):
                say(
                    f"    compensated {compensation['step']} with {compensation['tool']}: "
                    f"{json.dumps(compensation.get('result'), default=str)}"
                )
        say(
            f"  = {restored.status} at checkpoint {result.checkpoint}, "
            f"{len(result.compensations)} steps undone"
        )
        outcomes["deployment_pipeline"] = f"rolled back ({restored.status})"

    review = await run_scenario(
        orchestrator,
        "document_review",
        "4. Document review with multi-approvers",
        people(
            {
                "legal@example.com": ("approve", {"verdict": "publish"}),
                "compliance@example.com": (
                    "approve",
                    {"verdict": "publish_with_edits", "notes": "fix the typo in the table"},
                ),
                "editor@example.com": ("approve", {"verdict": "publish"}),
            }
        ),
    )
    outcomes["document_review"] = review["status"]

    say("\nOutcomes:")
    for name, outcome in outcomes.items():
        say(f"  {name}: {outcome}")
    say(
        "\nSee them in the dashboard: streamlit run app.py "
        f"(e.g. admin@example.com, password {DEMO_PASSWORD})."
    )
    return outcomes


async def add_demo_users(orchestrator: SmolAgentOrchestrator) -> None:
    """The demo's accounts, where missing, so the dashboard can show who decided."""
    from sqlalchemy import select

    from core.identity.users import add_user
    from core.store.tables import User

    def add_missing() -> None:
        with orchestrator.db.read() as session:
            known = set(session.scalars(select(User.email)).all())
        for email, role, groups in DEMO_USERS:
            if email not in known:
                add_user(orchestrator.db, email, role=role, password=DEMO_PASSWORD, groups=groups)
        if REQUESTER not in known:  # the agent: a service account, starts workflows, answers nothing
            add_user(orchestrator.db, REQUESTER, role="service")

    await orchestrator._call(add_missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=None, help=f"default: DATABASE_URL, else {get_settings().database_url}"
    )
    parser.add_argument("--ask", action="store_true", help="answer each request yourself at the prompt")
    args = parser.parse_args(argv)
    # The engine's own log lines go to stderr, warnings only unless COUNTERSIGN_LOG_LEVEL says.
    configure_logging(level=os.environ.get("COUNTERSIGN_LOG_LEVEL") or "WARNING")
    outcomes = asyncio.run(demo(args.database_url, args.ask))
    expected = {
        "order_processing": "completed",
        "budget_multilevel": "completed",
        "deployment_pipeline": "rolled back (paused)",
        "document_review": "completed",
    }
    return 0 if args.ask or outcomes == expected else 1


if __name__ == "__main__":
    sys.exit(main())
