"""``python -m core tenants ...``: tenants, their flows, secrets and model settings.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``. A secret's value is
read from stdin (piped) or a hidden prompt, never from an argument (which
would land in shell history and ``ps``), and is never printed.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, parse_json, print_json, table

tenants_app = typer.Typer(no_args_is_help=True, help="Tenants: organisations, their flows and keys.")
flows_app = typer.Typer(no_args_is_help=True, help="A tenant's named conversation flows.")
secrets_app = typer.Typer(no_args_is_help=True, help="A tenant's API keys (encrypted; never shown).")
tenants_app.add_typer(flows_app, name="flows")
tenants_app.add_typer(secrets_app, name="secrets")


@tenants_app.command("create")
def tenants_create(
    slug: str, name: Annotated[str, typer.Option(help="Display name.")] = "", actor: OptionalActor = None
) -> None:
    """Create a tenant."""
    from core.tenants import registry as tenants

    row = tenants.create_tenant(open_database(), slug, name=name, actor=acting(actor))
    typer.echo(f"tenant {row.slug} created")


@tenants_app.command("list")
def tenants_list(as_json: AsJson = False) -> None:
    """List tenants."""
    from core.tenants import registry as tenants

    rows = tenants.list_tenants(open_database())
    if as_json:
        print_json([tenants.tenant_dict(t) for t in rows])
        return
    table(
        [[t.slug, t.name, t.created_at.strftime("%Y-%m-%d %H:%M")] for t in rows], ["SLUG", "NAME", "CREATED"]
    )


@tenants_app.command("show")
def tenants_show(slug: str, as_json: AsJson = False) -> None:
    """Show a tenant: model settings, flows, secrets (names only) and what belongs to it."""
    from core.tenants import registry as tenants

    db = open_database()
    found = {
        **tenants.tenant_dict(tenants.get_tenant(db, slug)),
        "flows": [tenants.flow_dict(f) for f in tenants.list_flows(db, slug)],
        "secrets": [
            {"name": s.name, "value": s.masked, "updated_at": s.updated_at.isoformat()}
            for s in tenants.list_tenant_secrets(db, slug)
        ],
        "usage": tenants.tenant_usage(db, slug),
    }
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['name']} ({found['slug']})")
    typer.echo(f"model settings: {found['settings'].get('model') or 'platform defaults'}")
    typer.echo("belongs to it: " + ", ".join(f"{n} {k}" for k, n in found["usage"].items()))
    for flow in found["flows"]:
        typer.echo(f"flow {flow['name']}: {flow['agent_type']} tools={','.join(flow['tools']) or '-'}")
    for secret in found["secrets"]:
        typer.echo(f"secret {secret['name']}: {secret['value']}")


@tenants_app.command("delete")
def tenants_delete(slug: str, actor: OptionalActor = None) -> None:
    """Delete a tenant with its flows and secrets (refused while users or workflows belong to it)."""
    from core.tenants import registry as tenants

    tenants.delete_tenant(open_database(), slug, actor=acting(actor))
    typer.echo(f"tenant {slug} deleted")


@tenants_app.command("model")
def tenants_model(
    slug: str,
    settings: Annotated[
        str, typer.Option("--settings", help="JSON object: provider, model_id, api_base, options.")
    ],
    actor: OptionalActor = None,
) -> None:
    """Set a tenant's model settings (its key: `tenants secrets set SLUG model_api_key`)."""
    from core.tenants import registry as tenants

    row = tenants.set_tenant_model_settings(
        open_database(), slug, parse_json(settings, "--settings"), actor=acting(actor)
    )
    typer.echo(f"tenant {row.slug} model settings: {row.settings.get('model')}")


@tenants_app.command("user-model")
def tenants_user_model(
    email: str,
    settings: Annotated[str, typer.Option("--settings", help="JSON object: model_id, options.")],
    actor: OptionalActor = None,
) -> None:
    """Set a user's own model settings (the last layer, after platform and tenant)."""
    from core.tenants import registry as tenants

    user = tenants.set_user_model_settings(
        open_database(), email, parse_json(settings, "--settings"), actor=acting(actor)
    )
    typer.echo(f"{user.email} model settings: {user.settings.get('model')}")


# -- flows ----------------------------------------------------------------------------------


@flows_app.command("add")
def flows_add(
    tenant: str,
    name: str,
    agent_type: Annotated[str, typer.Option("--agent-type", help="tool_calling or code.")] = "tool_calling",
    tool: Annotated[list[str] | None, typer.Option("--tool", help="A tool it may use (repeatable).")] = None,
    parameters: Annotated[str | None, typer.Option(help="Agent parameters as a JSON object.")] = None,
    description: str = "",
    profile: Annotated[str | None, typer.Option(help="Agent profile the flow starts from.")] = None,
    actor: OptionalActor = None,
) -> None:
    """Add (or replace) a tenant's flow."""
    from core.tenants import registry as tenants

    fields: dict[str, Any] = {
        "name": name,
        "agent_type": agent_type,
        "tools": tool or [],
        "parameters": parse_json(parameters, "--parameters"),
        "description": description,
        "profile": profile,
    }
    row = tenants.save_flow(open_database(), tenant, fields, actor=acting(actor))
    typer.echo(f"flow {row.name} saved for {row.tenant}")


@flows_app.command("list")
def flows_list(tenant: str, as_json: AsJson = False) -> None:
    """List a tenant's flows."""
    from core.tenants import registry as tenants

    rows = [tenants.flow_dict(f) for f in tenants.list_flows(open_database(), tenant)]
    if as_json:
        print_json(rows)
        return
    table(
        [[f["name"], f["agent_type"], ",".join(f["tools"]) or "-", f["description"]] for f in rows],
        ["NAME", "AGENT", "TOOLS", "DESCRIPTION"],
    )


@flows_app.command("remove")
def flows_remove(tenant: str, name: str, actor: OptionalActor = None) -> None:
    """Remove a tenant's flow."""
    from core.tenants import registry as tenants

    tenants.remove_flow(open_database(), tenant, name, actor=acting(actor))
    typer.echo(f"flow {name} removed from {tenant}")


# -- secrets --------------------------------------------------------------------------------


def _secret_value() -> str:
    """The value from a pipe (one line, newline stripped) or a hidden prompt."""
    from core.base.errors import Invalid

    if sys.stdin.isatty():
        value = str(typer.prompt("Value", hide_input=True, confirmation_prompt=True))
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise Invalid("No value given: pipe it on stdin or type it at the prompt.")
    return value


@secrets_app.command("set")
def secrets_set(tenant: str, name: str, actor: OptionalActor = None) -> None:
    """Store a secret (value from stdin or a hidden prompt; never an argument)."""
    from core.tenants import registry as tenants

    db = open_database()
    tenants.get_tenant(db, tenant)  # an unknown tenant fails before asking for the value
    info = tenants.set_tenant_secret(db, tenant, name, _secret_value(), actor=acting(actor))
    typer.echo(f"secret {info.name} stored for {tenant} (encrypted)")


@secrets_app.command("list")
def secrets_list(tenant: str, as_json: AsJson = False) -> None:
    """List a tenant's secrets: names and a mask, never the values."""
    from core.tenants import registry as tenants

    rows = [
        {"name": s.name, "value": s.masked, "updated_at": s.updated_at.isoformat()}
        for s in tenants.list_tenant_secrets(open_database(), tenant)
    ]
    if as_json:
        print_json(rows)
        return
    table([[r["name"], r["value"], r["updated_at"][:19]] for r in rows], ["NAME", "VALUE", "UPDATED"])


@secrets_app.command("delete")
def secrets_delete(tenant: str, name: str, actor: OptionalActor = None) -> None:
    """Delete a tenant's secret."""
    from core.tenants import registry as tenants

    tenants.delete_tenant_secret(open_database(), tenant, name, actor=acting(actor))
    typer.echo(f"secret {name} deleted from {tenant}")


@secrets_app.command("rotate")
def secrets_rotate(actor: OptionalActor = None) -> None:
    """Re-encrypt every tenant secret with the first key of COUNTERSIGN_SECRETS_KEY."""
    from core.tenants import registry as tenants

    count = tenants.rotate_tenant_secrets(open_database(), actor=acting(actor))
    typer.echo(f"{count} secrets re-encrypted with the first key")
