"""What every ``python -m core`` command module shares: the acting person,
the opened database, JSON and table output, JSON options.

``cli.main`` and the command groups it registers all import these, so none of
them imports another to reach them.

Fast start: this module and every command module import only typer and the
standard library at module level (and ``core.base.errors``, which is standard
library only). Core, SQLAlchemy, settings and logging are imported inside the
command functions, so ``--help`` and a mistyped option never pay for them
(tests/acceptance/core/test_cli_startup.py holds this).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from core.base.errors import Invalid
from core.base.storable import json_integer_too_long, json_too_deep

if TYPE_CHECKING:
    from core.store.db import Database

F = TypeVar("F", bound=Callable[..., Any])
READS_ONLY = "_countersign_reads_only"
DEFAULT_ACTOR = os.environ.get("COUNTERSIGN_USER") or f"cli:{os.environ.get('USER', 'unknown')}"
AsJson = Annotated[bool, typer.Option("--json", help="Print only JSON.")]


def checked_actor(value: str | None) -> str | None:
    """``--as`` (and COUNTERSIGN_USER, its default) through the one check an address
    goes through (core.identity.addresses.actor_problem): a plain address, or a name
    without an ``@`` holding no control, invisible or direction character; else one
    ``error: --as: ...`` line naming what is wrong (exit 2)."""
    if value is None:
        return None
    from core.identity.addresses import InvalidAddress, actor_problem

    problem = actor_problem(value)
    if problem is not None:
        raise InvalidAddress(f"--as: {problem}.")
    return value


_AS_HELP = "Who is acting (recorded in the audit trail)."
# ``--as``: required where a command has no default for it.
Actor = Annotated[str, typer.Option("--as", help=_AS_HELP, callback=checked_actor)]
OptionalActor = Annotated[str | None, typer.Option("--as", help=_AS_HELP, callback=checked_actor)]


def acting(actor: str | None) -> str:
    """Who a command acts as: ``--as``, else COUNTERSIGN_USER, else ``cli:$USER``."""
    return actor or str(checked_actor(DEFAULT_ACTOR))


def open_database(*, reading: bool = False) -> Database:
    """The configured database, migrated, with the tool modules loaded; ``reading``
    (listings): without the tools and the writers' hooks, for a fast start."""
    from core.runtime import open_database as open_process_database

    return open_process_database(reading=reading)


def reads_only(command: F) -> F:
    """Mark a listing command: it only reads and prints, so it runs without the
    logging setup (structlog and its console renderer, about 0.1 s of CPU);
    anything a library warns about still reaches stderr through the standard
    library's last-resort handler. Put it under the ``@...command()`` line."""
    setattr(command, READS_ONLY, True)
    return command


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def parse_json(value: str | None, what: str) -> dict[str, Any]:
    """A JSON object given as an option (``{}`` when not given)."""
    if value is None:
        return {}
    # Measured on the text before parsing: json.loads recurses, and 10,000 levels of
    # brackets would end in a RecursionError traceback instead of one line.
    if deep := json_too_deep(value, what):
        raise Invalid(f"{deep}.")
    # json.loads would refuse it with Python's words and no place (exit 1, as for a crash).
    if long := json_integer_too_long(value, what):
        raise Invalid(f"{long}.")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise Invalid(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}.") from None
    if not isinstance(parsed, dict):
        raise Invalid(f"{what} must be a JSON object.")
    return parsed


def table(rows: list[list[Any]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
