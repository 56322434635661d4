"""``python -m core checkpoints ...``: list and take workflow checkpoints.

Registered by ``cli.main``; rolling back to one is ``workflow rollback``
(cli/workflows.py). Core is imported inside each command (fast ``--help``).
"""

from __future__ import annotations

import typer

from cli.support import DEFAULT_ACTOR, Actor, AsJson, open_database, print_json, table

checkpoints_app = typer.Typer(no_args_is_help=True, help="Workflow checkpoints.")


@checkpoints_app.command("list")
def checkpoints_list(workflow_id: str, as_json: AsJson = False, actor: Actor = DEFAULT_ACTOR) -> None:
    """List a workflow's checkpoints."""
    from core.engine import workflows as ops
    from core.store.tenancy import user_tenant

    db = open_database()
    rows = [
        ops.checkpoint_dict(c) for c in ops.checkpoints_of(db, workflow_id, tenant=user_tenant(db, actor))
    ]
    if as_json:
        print_json(rows)
        return
    table(
        [
            [
                c["id"],
                c["name"],
                c["step_index"],
                c["created_by"],
                c["created_at"][:19],
                "superseded" if c["superseded"] else "",
            ]
            for c in rows
        ],
        ["ID", "NAME", "STEP", "BY", "WHEN", ""],
    )


@checkpoints_app.command("create")
def checkpoints_create(
    workflow_id: str, name: str, description: str = "", actor: Actor = DEFAULT_ACTOR
) -> None:
    """Take a checkpoint of a workflow now."""
    from core.engine import workflows as ops

    checkpoint = ops.create_checkpoint(open_database(), workflow_id, name, actor, description=description)
    typer.echo(f"checkpoint {checkpoint.id} {checkpoint.name}")
