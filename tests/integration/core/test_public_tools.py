"""The README's "Writing your own tools" example, run as written: the decorator
registers the tool with an input schema from its signature, approvers' edits are
checked against it, and a rollback runs the tool's own compensation."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
import yaml

from core.approvals.engine import ApprovalEngine
from core.base.errors import InvalidResponse
from core.engine import workflows as ops
from core.engine.checkpoints import rollback
from core.engine.tools import default_registry
from core.identity.users import add_user
from core.store.db import Database
from tests.helpers.approved_calls import run
from tests.helpers.engine import open_approval_of, status

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if marker in b)


@pytest.fixture(scope="module")
def payments_module(tmp_path_factory: pytest.TempPathFactory) -> object:
    folder = tmp_path_factory.mktemp("tools")
    (folder / "payments_tools.py").write_text(readme_block("python", "# payments_tools.py"))
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("payments_tools")
    finally:
        sys.path.remove(str(folder))


def test_the_readme_tool_is_registered_with_its_schema(payments_module: object) -> None:
    charge = default_registry.get("charge_card")
    assert charge.compensate == "refund_card" and "refund_card" in default_registry
    assert charge.wants_key and charge.description == "Charge a customer's card."
    schema = charge.input_schema
    assert schema["required"] == ["amount", "currency", "customer"]
    assert schema["properties"]["amount"]["type"] == "number"
    assert schema["additionalProperties"] is False
    assert "idempotency_key" not in schema["properties"]


def test_the_readme_workflow_charges_what_was_approved_and_rolls_back(
    db: Database, payments_module: object
) -> None:
    definition = yaml.safe_load(readme_block("yaml", "name: Charge with approval"))
    definition["steps"].insert(0, {"name": "start", "type": "checkpoint"})
    add_user(db, "agent@example.com", role="service")
    add_user(db, "admin@example.com", role="admin")
    workflow_id = ops.create_workflow(
        db, definition, input_data={"amount": 300, "customer": "c-9"}, created_by="agent@example.com"
    ).id
    run(db, default_registry)
    approval = open_approval_of(db, workflow_id)
    with pytest.raises(InvalidResponse, match=r"arguments\.customer: 7 is not of type 'string'"):
        ApprovalEngine(db).respond_to_approval(
            approval.id, "finance@example.com", "modify", {"arguments": {"customer": 7}}
        )
    ApprovalEngine(db).respond_to_approval(
        approval.id, "finance@example.com", "approve", {"approved_amount": 250}
    )
    run(db, default_registry)
    assert status(db, workflow_id) == "completed"
    charged = ops.get_workflow(db, workflow_id).step_outputs["charge"]
    assert (charged["amount"], charged["currency"]) == (250, "EUR")
    result = rollback(
        db,
        default_registry,
        workflow_id,
        checkpoint_name="start",
        reason="customer cancelled",
        actor="admin@example.com",
    )
    [undone] = result.compensations
    assert undone["tool"] == "refund_card"
    assert undone["result"] == {"refunded": charged["charge_id"]}
