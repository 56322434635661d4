"""What a task step's agent is: type, model, tools, limits, instructions.

A step sets ``agent:`` either inline (a mapping validated by ``AgentSpec``)
or as the name of a profile. Profiles come from a YAML/JSON file named by
``COUNTERSIGN_AGENT_PROFILES``, from ``register_profile``, or from the
database's ``agent_profiles`` table (``core.agents.profiles``), which wins.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# The platform model's variables (re-exported here, where effective_model_spec reads them).
from core.base.config import API_BASE_ENV, API_KEY_ENV_ENV, MODEL_ID_ENV, PROVIDER_ENV

if TYPE_CHECKING:
    pass

PROFILES_ENV = "COUNTERSIGN_AGENT_PROFILES"
# Tools every agent gets; the names are reserved.
# The names agent profiles and teams may have.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]*")
BUILTIN_TOOLS = ("request_approval", "create_checkpoint", "rollback")
# Imports a code agent may use unless its spec widens the list. smolagents adds
# its own harmless base modules (math, re, datetime, ...).
DEFAULT_AUTHORIZED_IMPORTS: tuple[str, ...] = ()
# Countersign's own packages: a code agent's code never imports the code that guards it.
PROTECTED_PACKAGES = ("app", "cli", "components", "core", "gateway", "pages")
# Modules that hand code run in the runner's process the runner's own objects (frames,
# threads, every live object, raw memory, the import machinery), that read attributes
# or run code by name (operator.attrgetter, string.Formatter, pickle, timeit,
# unittest.mock, pydoc.locate, typing.ForwardRef), or its shell, files and network
# (smolagents' own list of dangerous modules): never importable by a code agent.
REFUSED_IMPORTS = (
    "_ctypes",
    "_io",
    "_operator",
    "_pickle",
    "_posixsubprocess",
    "_signal",
    "_string",
    "_thread",
    "_weakref",
    "asyncio",
    "atexit",
    "bdb",
    "builtins",
    "code",
    "codeop",
    "concurrent",
    "copyreg",
    "cProfile",
    "ctypes",
    "dbm",
    "dis",
    "doctest",
    "faulthandler",
    "fcntl",
    "ftplib",
    "gc",
    "glob",
    "grp",
    "http",
    "importlib",
    "inspect",
    "io",
    "linecache",
    "logging",
    "marshal",
    "mmap",
    "multiprocessing",
    "operator",
    "os",
    "pathlib",
    "pdb",
    "pickle",
    "pkgutil",
    "platform",
    "posix",
    "profile",
    "psycopg",
    "psycopg2",
    "pty",
    "pwd",
    "pydoc",
    "resource",
    "runpy",
    "select",
    "selectors",
    "shelve",
    "shutil",
    "signal",
    "site",
    "smolagents",
    "smtplib",
    "socket",
    "socketserver",
    "sqlalchemy",
    "sqlite3",
    "ssl",
    "string",
    "subprocess",
    "sys",
    "sysconfig",
    "tempfile",
    "threading",
    "timeit",
    "trace",
    "traceback",
    "tracemalloc",
    "types",
    "typing",
    "unittest",
    "urllib",
    "weakref",
    "xmlrpc",
    "zipimport",
)
_MODULE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?")


class ModelSpec(BaseModel):
    """Which model drives the agent; unset fields come from the environment."""

    model_config = ConfigDict(extra="forbid")

    provider: (
        Literal["rehearsal", "openai", "ollama", "inference_client", "litellm", "transformers", "python"]
        | None
    ) = None
    model_id: str | None = None
    api_base: str | None = None
    # The NAME of an environment variable holding the key, never the key itself.
    api_key_env: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    # What a definition, profile or tenant may choose (core.definitions.model_rules): never
    # code to run, a secret to send, or options that move requests elsewhere.
    @field_validator("model_id")
    @classmethod
    def _model_id_allowed(cls, model_id: str | None, info: ValidationInfo) -> str | None:
        from core.definitions.model_rules import model_id_problem

        if problem := model_id_problem(model_id, info.data.get("provider")):
            raise ValueError(problem)
        return model_id

    @field_validator("api_key_env")
    @classmethod
    def _key_env_allowed(cls, name: str | None) -> str | None:
        from core.definitions.model_rules import key_env_problem

        if problem := key_env_problem(name):
            raise ValueError(problem)
        return name

    @field_validator("options")
    @classmethod
    def _options_allowed(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from core.definitions import model_rules

        provider = model_rules.provider_in_effect(info.data.get("provider"), info.data.get("model_id"))
        if problem := model_rules.options_problem(options, provider):
            raise ValueError(problem)
        return options


def _model_spec(value: Any) -> Any:
    if isinstance(value, str):
        if value == "rehearsal":
            return {"provider": "rehearsal"}
        return {"model_id": value}
    return value


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["tool_calling", "code"] = "tool_calling"
    model: ModelSpec = Field(default_factory=ModelSpec)
    tools: list[str] = Field(default_factory=list)
    # Tools whose calls wait for a person before they run. An entry may be
    # ``{name: charge_card, when: "args.amount > 100"}``: the call waits only when
    # its gate is true (core.definitions.gates); the gates are kept in ``held_when``.
    held_tools: list[str] = Field(default_factory=list)
    held_when: dict[str, str] = Field(default_factory=dict)
    max_steps: int = Field(default=10, ge=1, le=200)
    instructions: str | None = None
    authorized_imports: list[str] = Field(default_factory=lambda: list(DEFAULT_AUTHORIZED_IMPORTS))
    # Code agents only: "local" (not a security boundary), "docker" or "e2b".
    executor: Literal["local", "docker", "e2b"] = "local"
    # Who is asked about held calls, and how (every key takes effect or is refused:
    # held_approval_problems; which request takes which key: request_settings).
    approval: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model", mode="before")
    @classmethod
    def _model_shorthand(cls, value: Any) -> Any:
        return _model_spec(value)

    @model_validator(mode="before")
    @classmethod
    def _gated_held_tools(cls, data: Any) -> Any:
        """``held_tools: [{name: x, when: "..."}]`` becomes the name and ``held_when[x]``."""
        if not isinstance(data, dict) or not isinstance(data.get("held_tools"), list):
            return data
        names: list[Any] = []
        gates = dict(data.get("held_when") or {})
        for index, entry in enumerate(data["held_tools"]):
            if not isinstance(entry, dict):
                names.append(entry)
                continue
            unknown = sorted(set(entry) - {"name", "when"})
            if unknown or not isinstance(entry.get("name"), str):
                raise ValueError(
                    f"held_tools[{index}]: a name, or {{name: <tool>, when: "
                    "<expression>}" + (f" (unknown field {unknown[0]!r})" if unknown else "")
                )
            names.append(entry["name"])
            if entry.get("when") is not None:
                from core.definitions.gates import check_expression

                when = entry["when"]
                problem = (
                    check_expression(when)
                    if isinstance(when, str) and when.strip()
                    else 'must be an expression such as "args.amount > 100"'
                )
                if problem:
                    raise ValueError(f"held_tools[{index}].when: {problem}")
                gates[entry["name"]] = when
        return {**data, "held_tools": names, "held_when": gates}

    @model_validator(mode="after")
    def _gates_are_valid(self) -> AgentSpec:
        from core.definitions.gates import check_expression

        for name, when in self.held_when.items():
            if name not in self.held_tools:
                raise ValueError(f"held_when.{name}: {name!r} is not a held tool")
            if not isinstance(when, str) or not when.strip():
                raise ValueError(f'held_when.{name}: must be an expression such as "args.amount > 100"')
            if problem := check_expression(when):
                raise ValueError(f"held_when.{name}: {problem}")
        return self

    def held_entries(self) -> list[str | dict[str, str]]:
        """``held_tools`` as written: a name, or ``{name, when}`` for a gated one."""
        return [{"name": n, "when": self.held_when[n]} if n in self.held_when else n for n in self.held_tools]

    @field_validator("tools", "held_tools")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a valid tool name")
        return list(dict.fromkeys(names))

    @field_validator("authorized_imports")
    @classmethod
    def _imports_are_safe(cls, names: list[str]) -> list[str]:
        for name in names:
            check_import(name)
        return names

    @field_validator("approval")
    @classmethod
    def _approval_is_valid(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from core.definitions.approval import ApprovalConfig

        try:
            ApprovalConfig.model_validate(value)
        except ValidationError as exc:
            raise ValueError(config_problem(exc)) from None
        # held_tools is validated before approval (field order); absent when it was refused.
        if problems := held_approval_problems(value, info.data.get("held_tools")):
            raise ValueError(problems[0])
        return value


# What each key of an agent's ``approval`` does (docs/agents.md, "Held calls' approval
# settings"). A key takes effect exactly as in a workflow's approval_config, on the requests
# named below, or the agent's settings are refused (held_approval_problems): none is
# accepted and then left out.
#
# Every request the agent opens (a held tool's call, rollback, its own request_approval
# questions): who is asked, and what the deadline does.
APPROVAL_KEYS_EVERY_REQUEST = (
    "requested_from",
    "required_approvers",
    "approval_threshold",
    "reject_decides",
    "allow_self_approval",
    "timeout",
    "on_timeout",
    "escalate_to",
    "on_expiry",
    "remind",
    "backup",
    "channels",
    "channel_configs",
)
# Held calls (a held tool's, rollback's) also take these; a question's title, description,
# type and context are the agent's own.
APPROVAL_KEYS_HELD_CALLS = (
    "title",
    "description",
    "allow_modify",
    "mode",
    "window",
    "context_data",
    "show",
)
# The calls of the tools in ``held_tools`` only: a budget, its levels and the argument it
# sets. rollback has no amount: it is asked as a yes/no question of ``requested_from``.
APPROVAL_KEYS_BUDGET = ("type", "levels", "amount_argument")
# Kinds of request an agent opens, for request_settings.
HeldRequest = Literal["held_tool", "builtin", "question"]
# What rollback's request and the agent's questions take, said in a refusal.
_TAKES = {
    "builtin": "no type, levels or amount_argument: it is a yes/no question of requested_from",
    "question": "who is asked and the deadline; the agent gives the rest",
}
# The held call's own facts in its request's context_data: a definition does not set them.
_CALL_CONTEXT_KEYS = ("tool", "arguments")


def approval_settings(approval: Mapping[str, Any]) -> dict[str, Any]:
    """The keys an agent's ``approval`` gives, as the approval config reads them: the
    seed's spellings (``approval_type``, ``required_approver``, ``form_fields`` inside
    ``context_data``) under the config's own names, durations in seconds."""
    from core.definitions.approval import ApprovalConfig

    config = ApprovalConfig.model_validate(dict(approval))
    given: dict[str, Any] = config.model_dump(mode="json", by_alias=True, include=config.model_fields_set)
    return given


def request_settings(given: Mapping[str, Any], kind: HeldRequest) -> dict[str, Any]:
    """The settings of ``given`` (``approval_settings``) that a request of ``kind`` takes."""
    keys = list(APPROVAL_KEYS_EVERY_REQUEST)
    if kind in ("held_tool", "builtin"):
        keys += APPROVAL_KEYS_HELD_CALLS
    if kind == "held_tool":
        keys += APPROVAL_KEYS_BUDGET
    settings = {key: given[key] for key in keys if key in given}
    if kind == "question" and "remind" in settings and settings.get("timeout") is None:
        # A veto window (mode, window) is a held call's; a question under it has no
        # deadline, so nothing to remind before.
        del settings["remind"]
    return settings


def held_approval_problems(approval: Mapping[str, Any], held_tools: list[str] | None) -> list[str]:
    """Why an agent's ``approval`` cannot be honoured as written, each ``"<key>: <why>"``
    (``approval`` is a valid approval config; ``held_tools`` None when it was refused).

    A key that would be accepted and then not take effect is refused: a form (a held
    call's answer is the call), a budget that does not say which argument is its amount or
    has no held tool of its own to apply to, and a config whose requests could not be
    opened (rollback's and the agent's questions take only some keys: request_settings).
    """
    from core.definitions.approval import ApprovalConfig
    from core.definitions.calls import INJECTED_PARAMETERS
    from core.definitions.timers import veto_refusals

    if refused := veto_refusals(dict(approval)):
        return refused
    given = approval_settings(approval)
    kind = given.get("type", "binary")
    answer = "a held call's approver approves it, rejects it or changes its arguments"
    if kind == "form":
        return [
            f"type: form is not for held calls: {answer}, and a form's answer would reach "
            "neither the tool nor the agent; use binary, or budget to let the approver "
            "lower an amount"
        ]
    for key in ("form_fields", "schema", "ui_schema"):
        if key in given:
            return [
                f"{key}: {answer} (within the tool's inputs); a form's fields would reach "
                "neither the tool nor the agent"
            ]
    context = given.get("context_data") or {}
    for key in _CALL_CONTEXT_KEYS:
        if key in context:
            return [
                f"context_data.{key}: is the held call's own (the tool and arguments the approver is shown)"
            ]
    amount_argument = given.get("amount_argument")
    if kind != "budget":
        if amount_argument is not None:
            return [
                f"amount_argument: only a budget (type: budget) sets an argument to the approved "
                f"amount, and this approval is {kind}"
            ]
    else:
        if amount_argument is None:
            return [
                "amount_argument: required with type: budget: name the argument of the held "
                "tools that is the amount (it routes the call to its levels, and the tool "
                "receives the amount the approver allows)"
            ]
        if amount_argument in INJECTED_PARAMETERS:
            return [
                f"amount_argument: {amount_argument!r} is Countersign's own parameter, not an "
                "argument of the call"
            ]
        if "amount" in context:
            return [
                "context_data.amount: with type: budget the amount is the held call's "
                f"{amount_argument!r} argument"
            ]
        if held_tools is not None:
            if not held_tools:
                return [
                    "type: budget applies to the calls of held_tools, and this agent holds "
                    "none (rollback has no amount)"
                ]
            for name in held_tools:
                if name in BUILTIN_TOOLS:
                    return [
                        f"amount_argument: held tool {name!r} is built in and has no "
                        f"{amount_argument!r} argument; with type: budget every held tool "
                        "needs it"
                    ]
    # Each kind of request the agent may open must open: rollback and the agent's
    # questions take only some of the keys (no budget levels: see request_settings).
    sample = {"title": "t", "description": ""}
    kinds: list[tuple[str, HeldRequest, str]] = [("rollback's request", "builtin", "binary")]
    kinds += [("the agent's own questions", "question", t) for t in ("binary", "form", "budget")]
    for label, request_kind, request_type in kinds:
        raw = {**request_settings(given, request_kind), **sample}
        raw.setdefault("type", request_type)
        try:
            ApprovalConfig.model_validate(raw)
        except ValidationError as exc:
            return [
                f"{config_problem(exc)} (for {label}, which takes only some of these "
                f"keys: {_TAKES[request_kind]})"
            ]
    return []


def config_problem(exc: ValidationError) -> str:
    """An approval config's first problem as ``"<key>: <why>"`` (``levels.0.approvers: ...``;
    the config's own ``"field|message"`` refusals under their field)."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    field, split, why = message.partition("|")
    if not split:
        field, why = "", message
    loc = [str(p) for p in first["loc"] if not str(p).startswith("function-")]
    where = ".".join(x for x in (*loc, field) if x)
    return f"{where}: {why}" if where else why


def held_label(entry: str | dict[str, Any]) -> str:
    """A held-tools entry in one line: ``charge_card`` or ``charge_card (when args.amount > 100)``."""
    if isinstance(entry, dict):
        return f"{entry.get('name')} (when {entry['when']})" if entry.get("when") else str(entry.get("name"))
    return entry


def check_import(name: str) -> None:
    """Refuse an import a code agent may not be authorised (ValueError)."""
    if name == "*":
        raise ValueError("'*' would allow every import; list the modules the agent needs")
    if not _MODULE_PATTERN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a module name (a dotted path, optionally ending in .* for its submodules)"
        )
    top = name.split(".", 1)[0]
    if top in PROTECTED_PACKAGES:
        raise ValueError(
            f"{name!r}: a code agent may not import Countersign's own packages "
            f"({', '.join(PROTECTED_PACKAGES)})"
        )
    if top in REFUSED_IMPORTS:
        raise ValueError(
            f"{name!r} would give the agent's code the runner's own process "
            "(its objects, threads, files or shell); it cannot be authorised"
        )


_profiles: dict[str, dict[str, Any]] = {}


def register_profile(name: str, spec: dict[str, Any] | AgentSpec) -> None:
    """Register a named agent profile (validated now)."""
    data = spec.model_dump() if isinstance(spec, AgentSpec) else dict(spec)
    AgentSpec.model_validate(data)
    _profiles[name] = data


def _file_profiles() -> dict[str, dict[str, Any]]:
    path = os.environ.get(PROFILES_ENV)
    if not path:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: agent profiles must be a mapping of name to agent settings")
    return {str(k): dict(v or {}) for k, v in data.items()}


def profile_names() -> list[str]:
    return sorted({*_profiles, *_file_profiles()})


def resolve_spec(
    agent: str | dict[str, Any] | None, stored: Mapping[str, dict[str, Any]] | None = None
) -> AgentSpec:
    """The agent settings of a step: inline, a named profile, or the defaults.

    A name is looked up in ``stored`` first (the database's ``agent_profiles``,
    ``core.agents.profiles.stored_profiles``), then in registered profiles,
    then in the profiles file.
    """
    from core.base.errors import ConfigurationError

    if agent is None:
        return AgentSpec()
    if isinstance(agent, str):
        if stored is not None and agent in stored:
            return AgentSpec.model_validate(stored[agent])
        profiles = {**_file_profiles(), **_profiles}
        if agent not in profiles:
            known = ", ".join(sorted({*profiles, *(stored or {})})) or "none"
            raise ConfigurationError(f"No agent profile is named {agent!r} (known: {known}).")
        return AgentSpec.model_validate(profiles[agent])
    return AgentSpec.model_validate(agent)


def check_agent_settings(agent: Any, plan: list[dict[str, Any]] | None) -> str | None:
    """The first problem of a step's ``agent``/``plan``, as ``path|message``; None if fine.

    Used by the definition validator so a bad agent config is refused with
    its path (``steps[2].agent.max_steps: ...``).
    """
    from core.definitions.timers import veto_refusals

    if isinstance(agent, dict):
        approval = agent.get("approval")
        if isinstance(approval, dict) and veto_refusals(approval):
            return None  # listed with its path by the definition's own check (workflow.py)
        try:
            AgentSpec.model_validate(agent)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "literal_error":
                message = "must be one of " + str(error.get("ctx", {}).get("expected", ""))
            return f"agent.{where}|{message}" if where else f"agent|{message}"
    elif isinstance(agent, str) and not agent.strip():
        return "agent|a profile name must not be empty"
    for index, call in enumerate(plan or []):
        if not isinstance(call.get("tool"), str) or not call["tool"]:
            return f"plan[{index}].tool|required: the name of the tool to call"
        if not isinstance(call.get("args", {}), dict):
            return f"plan[{index}].args|must be a mapping of argument names to values"
        unknown = set(call) - {"tool", "args"}
        if unknown:
            return f"plan[{index}].{sorted(unknown)[0]}|unknown field"
    return None


def effective_model_spec(spec: ModelSpec | None = None) -> ModelSpec:
    """The step's model settings, completed from the environment (the platform model,
    when a step names none)."""
    spec = spec or ModelSpec()
    provider = spec.provider or os.environ.get(PROVIDER_ENV) or None
    if provider is None and spec.model_id:
        provider = "openai"
    return ModelSpec(
        provider=provider or "rehearsal",  # type: ignore[arg-type]
        model_id=spec.model_id or os.environ.get(MODEL_ID_ENV) or None,
        api_base=spec.api_base or os.environ.get(API_BASE_ENV) or None,
        api_key_env=spec.api_key_env or os.environ.get(API_KEY_ENV_ENV) or None,
        options=dict(spec.options),
    )
