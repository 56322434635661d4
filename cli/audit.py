"""``python -m core audit ...``: verify the tamper-evident trail, export an auditor's record.

Registered by ``cli.main``; see core/records/trail.py, core/records/trail_verify.py and
core/ops/audit_export.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, print_json

audit_app = typer.Typer(
    no_args_is_help=True, help="The tamper-evident audit trail: verify it, export a record."
)


@audit_app.command("verify")
def audit_verify(
    workflow: Annotated[
        str | None, typer.Argument(help="Only this workflow's chain (default: every chain).")
    ] = None,
    as_json: AsJson = False,
    actor: OptionalActor = None,
) -> None:
    """Recompute the hash chains and check the requests and step runs against them;
    exit 4 naming the first broken link or contradicted field."""
    from core.records.trail_verify import require_intact, verify

    reports = verify(open_database(), acting(actor), workflow)
    if as_json:
        print_json(
            [
                {
                    "chain": r.chain,
                    "entries": r.entries,
                    "head": r.head,
                    "broken": None if r.broken is None else str(r.broken),
                    "mismatches": [str(m) for m in r.mismatches],
                }
                for r in reports
            ]
        )
    else:
        for report in reports:
            state = "intact" if report.intact else f"NOT INTACT, {report.fault}"
            typer.echo(f"{report.chain}: {report.entries} entries, {state}, head {report.head}")
    require_intact(reports)  # TrailBroken, a Conflict: one `error:` line and exit code 4
    if not as_json:
        typer.echo(f"verified {len(reports)} chain(s), {sum(r.entries for r in reports)} entries")


@audit_app.command("export")
def audit_export(
    workflow: Annotated[str, typer.Argument(help="The workflow's id.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or pdf.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
    actor: OptionalActor = None,
) -> None:
    """An auditor's record: who was asked, what they saw, decided and released, what ran,
    through which channel and verified identity; the trail's verification and hashes."""
    from core.ops.audit_files import export

    content = export(open_database(), acting(actor), workflow, fmt)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(content)
    typer.echo(f"wrote {output} ({len(content)} bytes)", err=True)
