"""What the tool receives after an answer given with ``python -m core approvals respond``.

The request is opened and the runner runs in this process (with the recording
``pay`` tool); the answer is the real command line, as a subprocess.
"""

from __future__ import annotations

import json

import pytest

from core.store.db import Database
from tests.acceptance.core.conftest import cli
from tests.helpers.approved_calls import CASES, FINANCE, pay_registry, run, waiting
from tests.helpers.engine import Calls

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli(db: Database, db_url: str, calls: Calls, case: str) -> None:
    approval_type, decision, data, received = CASES[case]
    registry = pay_registry(calls)
    _, approval = waiting(db, registry, approval_type)
    shown = cli(db_url, "approvals", "show", approval.id).stdout
    assert "Call: pay" in shown and "amount: 12500" in shown and "note: invoice 7" in shown
    args = ["approvals", "respond", approval.id, "--decision", decision, "--as", FINANCE]
    if data:
        args += ["--data", json.dumps(data)]
    done = cli(db_url, *args, ok=received is not None)
    if received is None:
        assert "arguments.amount" in done.stderr or "another tool" in done.stderr
    run(db, registry)
    assert calls.of("pay") == ([received] if received is not None else [])
    if approval_type == "budget":
        assert (
            "9,000.00 USD (nine thousand US dollars)" in cli(db_url, "approvals", "show", approval.id).stdout
        )
