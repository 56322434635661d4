"""``python -m core agents ...``: agent profiles from the command line.

Registered by ``cli.main``; the helpers all command modules share are in
``cli.support``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.support import AsJson, OptionalActor, acting, open_database, parse_json, print_json, table

agents_app = typer.Typer(no_args_is_help=True, help="Agent profiles that task steps use by name.")

Role = Annotated[str | None, typer.Option(help="What the agent is, e.g. 'Refund checker'.")]
Instructions = Annotated[str | None, typer.Option(help="Instructions added to the agent's prompt.")]
AgentType = Annotated[str | None, typer.Option("--type", help="tool_calling or code.")]
Provider = Annotated[
    str | None,
    typer.Option(
        "--provider", help="rehearsal, openai, ollama, inference_client, litellm, transformers or python."
    ),
]
ModelId = Annotated[str | None, typer.Option("--model", help="The model id on that provider.")]
Tools = Annotated[list[str] | None, typer.Option("--tool", help="A tool it may call (repeatable).")]
HeldTools = Annotated[
    list[str] | None, typer.Option("--held-tool", help="A tool whose calls wait for a person (repeatable).")
]
MaxSteps = Annotated[int | None, typer.Option(help="Most agent steps per run.")]
Settings = Annotated[
    str | None,
    typer.Option(
        help="Other settings as a JSON object: model (api_base, api_key_env, options), approval, "
        "authorized_imports, executor."
    ),
]


def _fields(
    role: str | None,
    instructions: str | None,
    agent_type: str | None,
    provider: str | None,
    model: str | None,
    tools: list[str] | None,
    held_tools: list[str] | None,
    max_steps: int | None,
    settings: str | None,
) -> dict[str, Any]:
    """The options given, as profile fields (options left out are not changed)."""
    given: dict[str, Any] = {
        "role": role,
        "instructions": instructions,
        "agent_type": agent_type,
        "model_provider": provider,
        "model_id": model,
        "tools": tools,
        "held_tools": held_tools,
        "max_steps": max_steps,
        "settings": None if settings is None else parse_json(settings, "--settings"),
    }
    return {key: value for key, value in given.items() if value is not None}


@agents_app.command("create")
def agents_create(
    name: str,
    role: Role = None,
    instructions: Instructions = None,
    agent_type: AgentType = None,
    provider: Provider = None,
    model: ModelId = None,
    tool: Tools = None,
    held_tool: HeldTools = None,
    max_steps: MaxSteps = None,
    settings: Settings = None,
    actor: OptionalActor = None,
) -> None:
    """Create an agent profile."""
    from core.agents import profiles

    fields = _fields(role, instructions, agent_type, provider, model, tool, held_tool, max_steps, settings)
    row = profiles.create_profile(open_database(), {"name": name, **fields}, acting(actor))
    typer.echo(f"agent profile {row.name} created")


@agents_app.command("list")
def agents_list(as_json: AsJson = False) -> None:
    """List agent profiles."""
    from core.agents import profiles
    from core.definitions.agents import held_label

    rows = [profiles.profile_dict(p) for p in profiles.list_profiles(open_database())]
    if as_json:
        print_json(rows)
        return
    table(
        [
            [
                r["name"],
                r["role"],
                r["agent_type"],
                r["model_provider"] or "-",
                r["model_id"] or "-",
                ",".join(r["tools"]),
                ",".join(held_label(h) for h in r["held_tools"]),
            ]
            for r in rows
        ],
        ["NAME", "ROLE", "TYPE", "PROVIDER", "MODEL", "TOOLS", "HELD"],
    )


@agents_app.command("show")
def agents_show(name: str, as_json: AsJson = False) -> None:
    """Show one agent profile."""
    from core.agents import profiles

    profile = profiles.profile_dict(profiles.get_profile(open_database(), name))
    if as_json:
        print_json(profile)
        return
    for key, value in profile.items():
        typer.echo(f"{key}: {value}")


@agents_app.command("edit")
def agents_edit(
    name: str,
    role: Role = None,
    instructions: Instructions = None,
    agent_type: AgentType = None,
    provider: Provider = None,
    model: ModelId = None,
    tool: Tools = None,
    held_tool: HeldTools = None,
    max_steps: MaxSteps = None,
    settings: Settings = None,
    actor: OptionalActor = None,
) -> None:
    """Change an agent profile: the options given replace the stored values."""
    from core.agents import profiles

    changes = _fields(role, instructions, agent_type, provider, model, tool, held_tool, max_steps, settings)
    row = profiles.update_profile(open_database(), name, changes, acting(actor))
    typer.echo(f"agent profile {row.name} updated")


@agents_app.command("delete")
def agents_delete(name: str, actor: OptionalActor = None) -> None:
    """Delete an agent profile (refused while an unfinished workflow uses it)."""
    from core.agents import profiles

    profiles.delete_profile(open_database(), name, acting(actor))
    typer.echo(f"agent profile {name} deleted")
