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


def test_an_answer_given_for_what_was_read_is_refused_once_the_call_changed(
    db: Database, db_url: str, calls: Calls
) -> None:
    from core.approvals.engine import ApprovalEngine
    from tests.integration.gateway.test_outdated_answers import (
        ADMIN,
        ESCROW,
        finance_changes_the_note,
        two_levels,
    )

    registry, approval = two_levels(db, calls)
    read = json.loads(cli(db_url, "approvals", "show", approval.id, "--json", "--as", ADMIN).stdout)
    level, digest = str(read["level"]), read["proposed_call"]["digest"]
    finance_changes_the_note(db, approval.id)
    respond = ["approvals", "respond", approval.id, "--decision", "approve", "--as", ADMIN]
    for given in (["--level", level], ["--digest", digest], ["--level", level, "--digest", digest]):
        stale = cli(db_url, *respond, *given, ok=False)
        assert stale.returncode == 4, stale.stderr
        assert "it decides nothing" in stale.stderr and "Traceback" not in stale.stderr
    assert [v.approver for v in ApprovalEngine(db).responses(approval.id)] == [FINANCE]
    # Read again, the answer counts, and the tool receives the call the admin read.
    now = json.loads(cli(db_url, "approvals", "show", approval.id, "--json", "--as", ADMIN).stdout)
    cli(db_url, *respond, "--level", str(now["level"]), "--digest", now["released_call"]["digest"])
    run(db, registry)  # type: ignore[arg-type]
    assert calls.of("pay") == [{**read["proposed_call"]["arguments"], "note": ESCROW}]
