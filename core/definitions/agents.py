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
    # Approval settings for held calls (approvers, timeout, channels ...).
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
    def _approval_is_valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        from core.definitions.approval import ApprovalConfig

        try:
            ApprovalConfig.model_validate(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: {first['msg']}") from None
        return value


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
    if isinstance(agent, dict):
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
