"""The command line: ``python -m core ...`` (typer).

Every command that changes something takes ``--as USER``, recorded as the
actor. Listings and ``show`` take ``--json`` and then print only JSON. A
refused command exits with a one-line reason on stderr, never a traceback.

This module only assembles the app from one module per command group and maps
errors to exit codes. Like every ``cli`` module it imports only typer and the
standard library at module level; core is imported when a command runs, and
logging is configured then too (on stderr), so ``--help`` starts fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NoReturn

import typer

from cli.accounts import register as register_account_state
from cli.alerts import alerts_app
from cli.approvals import approvals_app
from cli.audit import audit_app
from cli.checkpoints import checkpoints_app
from cli.coercion import plain_checks
from cli.database import db_app, export_command, import_command
from cli.execution_logs import logs_command
from cli.policies import ooo_app, rules_app
from cli.profiles import agents_app
from cli.runner import demo_command, doctor_command, runner_command
from cli.serve import serve_command, slack_socket_command
from cli.sessions import sessions_app
from cli.support import READS_ONLY
from cli.teams import teams_app
from cli.tenants import tenants_app
from cli.tokens import tokens_app
from cli.users import users_app
from cli.workflows import workflow_app
from core.base import errors
from core.base.errors import CountersignError


class _CommandLine(typer.core.TyperGroup):
    """The root group: built with every command below it, which then check plain text
    and whole-number options without pydantic (``cli.coercion``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_checks(self)


def _root() -> typer.Typer:
    return typer.Typer(
        cls=_CommandLine,
        no_args_is_help=True,
        add_completion=False,
        help="Countersign: human approvals for AI agent workflows.",
    )


app = _root()
# --help lists the single commands, then the groups, each in this order.
app.add_typer(db_app, name="db")
app.add_typer(workflow_app, name="workflow")
app.add_typer(approvals_app, name="approvals")
app.add_typer(checkpoints_app, name="checkpoints")
app.add_typer(users_app, name="users")
register_account_state(users_app)  # users disable / enable (cli/accounts.py)
app.command("runner")(runner_command)
app.command("demo")(demo_command)
app.add_typer(tokens_app, name="tokens")
app.command("serve")(serve_command)
app.command("slack-socket")(slack_socket_command)
app.command("doctor")(doctor_command)
app.command("export")(export_command)
app.command("import")(import_command)
app.add_typer(agents_app, name="agents")
agents_app.add_typer(teams_app, name="teams")
app.add_typer(alerts_app, name="alerts")
app.command("logs")(logs_command)
app.add_typer(tenants_app, name="tenants")
app.add_typer(rules_app, name="rules")
app.add_typer(ooo_app, name="ooo")
app.add_typer(sessions_app, name="sessions")
app.add_typer(audit_app, name="audit")


# Each kind of core error (core.base.errors.KINDS) exits with its own code, so a
# script can tell "no such workflow" from "not allowed" from "database down".
EXIT_CODE_BY_KIND: dict[type[CountersignError], int] = {
    errors.Invalid: 2,
    errors.NotFound: 3,
    errors.Conflict: 4,
    errors.Forbidden: 5,
    errors.Unauthenticated: 5,
    errors.Unavailable: 6,
}


def exit_code_for(error: CountersignError) -> int:
    kind = errors.kind_of(error)
    return EXIT_CODE_BY_KIND[kind] if kind is not None else 1


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


# Set while main() runs: a command run through main() (python -m core) sets up
# logging; one invoked on ``app`` directly (typer's CliRunner in tests) leaves
# the caller's logging alone (only main() ever configured it).
_RUN_BY_MAIN: ContextVar[bool] = ContextVar("cli_run_by_main", default=False)


def _configure_logging_first(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, configuring logging just before it runs (not for --help or usage
    errors, nor for a listing marked ``reads_only``)."""
    if getattr(command, READS_ONLY, False):
        return command

    @functools.wraps(command)  # typer reads the options from the wrapped signature
    def run(*args: Any, **kwargs: Any) -> Any:
        if _RUN_BY_MAIN.get():
            from core.base.logging import configure_logging

            configure_logging()  # on stderr: stdout stays the command's output only
        return command(*args, **kwargs)

    return run


def _configure_logging_in(group: typer.Typer) -> None:
    for info in group.registered_commands:
        if info.callback is not None:
            info.callback = _configure_logging_first(info.callback)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _configure_logging_in(sub.typer_instance)


_configure_logging_in(app)


def _help_flags_off(group: typer.Typer) -> dict[str, Any]:
    """A click default map giving every group's and command's ``--help`` the value False.

    typer checks a flag left unset (None) through pydantic, which costs a tenth
    of a second at start-up; a flag that is already a bool it takes as it is.
    Keys below a group are its commands' names (groups have no other options).
    """
    defaults: dict[str, Any] = {"help": False}
    for info in group.registered_commands:
        if info.name:
            defaults[info.name] = {"help": False}
    for sub in group.registered_groups:
        if sub.name and sub.typer_instance is not None:
            defaults[sub.name] = _help_flags_off(sub.typer_instance)
    return defaults


def _app_for(args: list[str]) -> typer.Typer:
    """The app that runs ``args``: when they start with a group's name, the root with
    that group alone (typer builds every command of the app it runs, about 0.02 s of
    CPU for the whole tree; a group's commands, their help and errors are the same);
    otherwise the whole app (its help lists everything)."""
    if args:
        for info in app.registered_groups:
            if info.name == args[0]:
                root = _root()
                root.registered_groups.append(info)
                return root
    return app


def _exit_for(exc: Exception) -> None:
    """Exit with the code and one line for an error we know; return for any other."""
    if isinstance(exc, CountersignError):
        _fail(str(exc).replace("\n", " "), exit_code_for(exc))
    # SQLAlchemy and click are looked up only if a command loaded them: an error
    # of theirs cannot happen otherwise, and importing them costs start-up time.
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError):
        from core.store.db import translate

        _fail(str(translate(exc)).splitlines()[0])
    click = sys.modules.get("click")
    if isinstance(exc, typer.Abort) or (click is not None and isinstance(exc, click.exceptions.Abort)):
        _fail("aborted")
    if click is not None and isinstance(exc, click.exceptions.ClickException):
        exc.show()
        raise SystemExit(exc.exit_code) from None
    if isinstance(exc, typer.TyperException):
        # typer >= 0.29 vendors click, so its usage errors are not click's
        # classes; without this they left as tracebacks.
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(0) from None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(f"{message} (see --help)".replace("\n", " "), getattr(exc, "exit_code", 2))
    if isinstance(exc, OSError | ValueError):
        _fail(str(exc))


def main(argv: list[str] | None = None) -> None:
    run_by_main = _RUN_BY_MAIN.set(True)
    args = sys.argv[1:] if argv is None else argv
    runs = _app_for(args)
    try:
        runs(args=args, standalone_mode=False, default_map=_help_flags_off(runs))
    except Exception as exc:
        _exit_for(exc)
        raise
    finally:
        _RUN_BY_MAIN.reset(run_by_main)
