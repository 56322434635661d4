"""An address is a plain ASCII one wherever it enters (core.identity.addresses), on
SQLite and PostgreSQL.

A tenant's admin could add ``admin@example.com`` followed by a zero-width space, one
reversed by a right-to-left override, or one with a Cyrillic ``а``: each lists, and
signs the audit trail, exactly like the platform admin. Now an address is refused
unless it is plain ASCII (letters, digits and ``. _ + -`` before the ``@``; a domain
of letters, digits and hyphens), naming the character and why, wherever it enters:
``users add`` (and its groups), the approvers a definition or a request's config
names, a delegate, the CLI's ``--as``, and a Slack user map (Settings or
SLACK_USER_MAP). No confusables table: ASCII-only is the rule against look-alikes.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.approvals.engine import ApprovalEngine
from core.base.errors import DefinitionError, Invalid
from core.channels.registry import store_channel_settings
from core.definitions.workflow import parse_approval_config
from core.engine import workflows as ops
from core.identity.addresses import (
    InvalidAddress,
    InvalidGroup,
    actor_problem,
    address_problem,
    group_problem,
)
from core.identity.permissions import REFUSED_EVENT, Action, allowed, check
from core.identity.users import add_user, list_users
from core.store.db import Database
from gateway.app import create_app
from tests.integration.gateway.conftest import waiting_workflow
from tests.integration.permissions.test_disabled_accounts import (  # noqa: F401  (its autouse fixture)
    BOSS_SLACK,
    channels_env,
    events,
    slack_click,
)

ADMIN = "admin@example.com"
TENANT_ADMIN = "bob@acme.example"
ZERO_WIDTH = "admin@example.com\u200b"
REVERSED = "\u202emoc.elpmaxe@nimda"
CYRILLIC = "\u0430dmin@example.com"
LOOKALIKES = {
    ZERO_WIDTH: r"'admin@example.com\u200b' contains U+200B (ZERO WIDTH SPACE), an invisible character",
    REVERSED: r"'\u202emoc.elpmaxe@nimda' contains U+202E (RIGHT-TO-LEFT OVERRIDE), a direction control",
    CYRILLIC: "'\u0430dmin@example.com' contains U+0430 (CYRILLIC SMALL LETTER A), which is not ASCII",
}


@pytest.mark.parametrize(
    ("address", "words"),
    [
        *LOOKALIKES.items(),
        ("admin@example.com,viewer@example.com", "contains ',', a comma: give one address, not a list"),
        ("admin@example.com;viewer@example.com", "contains ';', a semicolon"),
        ('"a b"@example.com', "contains '\"', a quotation mark"),
        ("Admin <admin@example.com>", "contains U+0020 (SPACE), a space or separator"),
        ("<admin@example.com>", "contains '<', an angle bracket: give the bare address"),
        ("ad min@example.com", "contains U+0020 (SPACE), a space or separator"),
        ("admin@example.com\u00a0", "contains U+00A0 (NO-BREAK SPACE), a space or separator"),
        ("admin@exa\tmple.com", r"contains U+0009, a control character"),
        ("ad\u00admin@example.com", "contains U+00AD (SOFT HYPHEN), an invisible character"),
        ("\u212aate@example.com", "contains U+212A (KELVIN SIGN), which is not ASCII"),
        ("admin@ex\u0430mple.com", "contains U+0430 (CYRILLIC SMALL LETTER A), which is not ASCII"),
        ("admin@b\u00fccher.example", "an internationalised domain is written in its xn-- form"),
        ("a|b@example.com", "contains '|'; a plain address is letters, digits and . _ + - before the @"),
        ("admin@@example.com", "has more than one @"),
        ("a@b@example.com", "has more than one @"),
        ("@example.com", "has nothing before the @"),
        ("admin@", "has no domain after the @"),
        (".admin@example.com", "has a dot at either end of the part before the @, or two in a row"),
        ("ad..min@example.com", "two in a row"),
        ("admin@example..com", "has an empty part in its domain"),
        ("admin@-example.com", "starts or ends with a hyphen"),
        ("admin@example.com.", "has an empty part in its domain"),
        ("a" * 65 + "@example.com", "has more than 64 characters before the @"),
        ("a@" + ".".join(["b" * 60] * 5), "is longer than 254 characters"),
        ("a@" + "b" * 64 + ".com", "has a domain part longer than 63 characters"),
        ("agent:x@example.com", "starts with 'agent:', kept for system actors"),
        ("a:b@example.com", "has a colon before the @"),
        ("admin", "is not an email address"),
    ],
)
def test_an_address_is_plain_ascii(address: str, words: str) -> None:
    problem = address_problem(address)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    "address",
    [
        "admin@example.com",
        "First.Last+tag@Sub.Example.co.uk",
        "o_k-1@localhost",
        "x@xn--bcher-kva.example",
        "  padded@example.com\n",  # as pasted: trimmed
    ],
)
def test_plain_addresses_pass(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("admin@example.com", "holds an @, which makes it a person's address, not a group's name"),
        ("fin ance", "contains U+0020 (SPACE), a space or separator"),
        ("\u0430dmins", "contains U+0430 (CYRILLIC SMALL LETTER A), which is not ASCII"),
        ("admins\u200b", "contains U+200B (ZERO WIDTH SPACE), an invisible character"),
        ("fin,ops", "contains ',', a comma"),
        ("-ops", "starts with '-'"),
        ("x" * 101, "is longer than 100 characters"),
    ],
)
def test_a_group_name_is_plain_ascii(name: str, words: str) -> None:
    problem = group_problem(name)
    assert problem is not None and words in problem, problem
    assert group_problem("Finance-Team_2.eu") is None


def test_no_one_adds_a_look_alike_account(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    add_user(db, TENANT_ADMIN, role="admin", tenant="acme")
    for address, words in LOOKALIKES.items():
        for actor in (TENANT_ADMIN, ADMIN, "system"):
            with pytest.raises(InvalidAddress) as refused:
                add_user(db, address, role="admin", tenant="acme", password="lookalike-pw-123", actor=actor)
            assert str(refused.value).startswith(f"email: {words}"), str(refused.value)
            assert isinstance(refused.value, Invalid)
    # A list, a quoted name: refused as well.
    for address in ("admin@example.com,viewer@example.com", '"a b"@example.com'):
        with pytest.raises(InvalidAddress):
            add_user(db, address, role="viewer", actor=ADMIN)
    assert [u.email for u in list_users(db)] == [ADMIN, TENANT_ADMIN]


def test_groups_are_plain_names(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    with pytest.raises(InvalidGroup, match=r"^groups\[1\]: 'admin@example.com' holds an @"):
        add_user(db, "amy@example.com", role="approver", groups=["finance", "admin@example.com"], actor=ADMIN)
    with pytest.raises(InvalidGroup, match=r"^groups\[0\]: 'fin ance' contains U\+0020"):
        add_user(db, "amy@example.com", role="approver", groups=["fin ance"], actor=ADMIN)
    assert [u.email for u in list_users(db)] == [ADMIN]
    amy = add_user(
        db, "amy@example.com", role="approver", groups=[" Finance ", "finance", "ops"], actor=ADMIN
    )
    assert amy.groups == ["finance", "ops"]


def test_a_definition_names_only_plain_approvers(db: Database) -> None:
    add_user(db, ADMIN, role="admin")
    definition = {
        "name": "lookalike",
        "steps": [
            {
                "name": "pay",
                "type": "checkpoint",
                "requires_approval": True,
                "approval_config": {
                    "requested_from": [ZERO_WIDTH, "finance team"],
                    "escalate_to": [[CYRILLIC]],
                    "timeout": "1h",
                    "on_timeout": "escalate",
                    "backup": {"to": "boss@example.com,admin@example.com"},
                },
            }
        ],
    }
    with pytest.raises(DefinitionError) as refused:
        ops.create_workflow(db, definition, created_by=ADMIN)
    where = "steps[0].approval_config"
    assert refused.value.problems == [
        f"{where}.requested_from[0]: {LOOKALIKES[ZERO_WIDTH]}; use a plain address",
        f"{where}.requested_from[1]: 'finance team' contains U+0020 (SPACE), a space or separator; "
        "a group's name is letters, digits and . _ -",
        f"{where}.escalate_to[0][0]: {LOOKALIKES[CYRILLIC]}: addresses and names are ASCII so that "
        "none can pass for another (an internationalised domain is written in its xn-- form); use a "
        "plain address",
        f"{where}.backup.to: 'boss@example.com,admin@example.com' contains ',', a comma: give one "
        "address, not a list; use a plain address",
    ]
    # A request's config given on its own (an agent's question, the API): the same check.
    with pytest.raises(DefinitionError, match=r"approval_config\.requested_from\[0\]: .*U\+202E"):
        parse_approval_config({"requested_from": REVERSED})
    assert parse_approval_config({"requested_from": ["Finance", "amy@example.com"]}).approvers == [
        "Finance",
        "amy@example.com",
    ]


def test_an_address_no_account_could_have_answers_nothing(db: Database) -> None:
    """A request stored before addresses were checked may name one: nobody answers as it."""
    for address in LOOKALIKES:
        assert not allowed(db, address, Action.APPROVALS_ANSWER)
    with db.session() as session, pytest.raises(Exception, match=r"not a plain address: .*U\+200B"):
        check(session, ZERO_WIDTH, Action.APPROVALS_ANSWER)
    assert [e.data["reason"] for e in events(db, REFUSED_EVENT)][0].startswith("not a plain address")


def test_the_cli_checks_as_and_a_delegate(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    monkeypatch.setenv("DATABASE_URL", db_url)
    add_user(db, ADMIN, role="admin")
    runner = CliRunner()
    for address, words in LOOKALIKES.items():
        result = runner.invoke(app, ["workflow", "list", "--as", address])
        assert isinstance(result.exception, InvalidAddress), result.output
        assert str(result.exception).startswith(f"--as: {words}")
        result = runner.invoke(app, ["users", "remove", "nobody@example.com", "--as", address])
        assert isinstance(result.exception, InvalidAddress), result.output
    result = runner.invoke(app, ["workflow", "list", "--as", "cli:\u202eops"])
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in str(result.exception)
    assert runner.invoke(app, ["workflow", "list", "--as", ADMIN]).exit_code == 0
    assert runner.invoke(app, ["workflow", "list", "--as", "cli:ops"]).exit_code == 0
    # A delegate and the person away go through the same check.
    add_user(db, "amy@example.com", role="approver", actor=ADMIN)
    result = runner.invoke(
        app, ["ooo", "set", "--until", "2099-01-01", "--delegate", CYRILLIC, "--as", "amy@example.com"]
    )
    assert isinstance(result.exception, InvalidAddress), result.output
    assert str(result.exception).startswith(f"--delegate: {LOOKALIKES[CYRILLIC]}")


def test_a_slack_user_map_links_only_plain_addresses(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(db, ADMIN, role="admin")
    with pytest.raises(InvalidAddress, match=r"^user_map\['U0EVIL'\]: 'admin@example.com\\u200b' contains"):
        store_channel_settings(
            db, "slack", enabled=True, settings={"user_map": {"U0EVIL": ZERO_WIDTH}}, actor=ADMIN
        )
    with pytest.raises(InvalidAddress, match=r"^user_map\['\u0430dmin@example.com'\]: .* U\+0430"):
        store_channel_settings(
            db, "slack", enabled=True, settings={"user_map": {CYRILLIC: "U1"}}, actor=ADMIN
        )
    # SLACK_USER_MAP is read, not saved: its look-alike answers nothing, saying why.
    monkeypatch.setenv("SLACK_USER_MAP", json.dumps({ZERO_WIDTH: BOSS_SLACK}))
    _, approval = waiting_workflow(db)
    with TestClient(create_app(db)) as client:
        text = slack_click(client, approval.id)
    assert text.startswith(
        f"Your Slack account ({BOSS_SLACK}) is linked to an address that is not a plain one"
    )
    assert "U+200B (ZERO WIDTH SPACE)" in text and "SLACK_USER_MAP" in text
    assert ApprovalEngine(db).responses(approval.id) == []


def test_actor_names_without_an_at() -> None:
    assert actor_problem("cli:ops") is None and actor_problem("system") is None
    assert actor_problem("cli:jos\u00e9") is None  # a login may be any letters
    assert "a space or separator" in str(actor_problem("cli:a b"))
    assert "a control character" in str(actor_problem("cli:\x1b[31m"))
