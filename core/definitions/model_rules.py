"""What model settings a definition, an agent profile or a tenant may choose.

Model settings come from people with very different rights: the operator (the
runner's environment), platform admins (agent profiles, tenants, flows) and
anyone who may start a workflow (a step's ``agent.model``) or set their own
model (a tenant user). Nothing but the operator's environment may choose code
to run, a secret to send, or where a request goes with the platform's key:

- **code**: the ``python`` provider imports only a ``module:attr`` factory the
  operator lists in ``COUNTERSIGN_PYTHON_MODELS`` (or the platform's own
  default model);
- **secrets**: ``api_key_env`` names only a provider's default key variable
  (``OPENAI_API_KEY``, ``HF_TOKEN``), the platform's
  ``COUNTERSIGN_MODEL_API_KEY_ENV`` or one listed in
  ``COUNTERSIGN_MODEL_KEY_ENVS``;
- **options**: only plain generation options (``GENERATION_OPTIONS``); options
  that would change the client, its server, its headers or load code are
  refused. A ``python`` model's options are its allowed factory's arguments;
- **servers**: a model id is a name, never a URL (some clients take a URL model
  id as their server). Which server may receive the platform's key is decided
  when the model is built (``core.agents.llm``).

Each check returns a problem in words, or None; validators and the model
builder raise it.
"""

from __future__ import annotations

import os
from typing import Any

from core.base.config import (
    MODEL_KEY_ENVS_ENV,
    PROVIDER_ENV,
    PYTHON_MODELS_ENV,
    allowed_model_key_envs,
    allowed_python_models,
)

# Options that only shape the answer: no client, server, header, key or code in them.
GENERATION_OPTIONS = frozenset(
    {
        "frequency_penalty",
        "max_completion_tokens",
        "max_new_tokens",
        "max_tokens",
        "presence_penalty",
        "reasoning_effort",
        "repetition_penalty",
        "seed",
        "stop",
        "temperature",
        "top_k",
        "top_p",
    }
)


def provider_in_effect(provider: str | None, model_id: str | None = None) -> str | None:
    """The provider a spec will run with: its own, else the platform's (as
    ``effective_model_spec`` completes it); ``openai`` for a bare model id."""
    chosen = provider or os.environ.get(PROVIDER_ENV) or None
    return "openai" if chosen is None and model_id else chosen


def python_model_problem(target: str | None) -> str | None:
    """Why the ``python`` provider may not import ``target``, or None."""
    if target and target.strip() in allowed_python_models():
        return None
    return (
        f"{target!r} is not a Python model factory the platform allows: a definition, "
        "profile or tenant cannot choose code to run; the operator lists allowed factories "
        f"(module:attr) in {PYTHON_MODELS_ENV}"
    )


def key_env_problem(name: str | None) -> str | None:
    """Why a model may not read its key from the variable ``name``, or None."""
    if name is None or name in (allowed := allowed_model_key_envs()):
        return None
    return (
        f"{name!r} is not a model key variable the platform allows ({', '.join(sorted(allowed))}); "
        f"the operator lists others in {MODEL_KEY_ENVS_ENV}"
    )


def options_problem(options: dict[str, Any], provider: str | None) -> str | None:
    """The first option that is not a plain generation option (any, for ``python``), or None."""
    if provider == "python":
        return None  # the arguments of a factory the operator allowed
    refused = sorted(name for name in options if name not in GENERATION_OPTIONS)
    if not refused:
        return None
    return (
        f"{refused[0]!r} may not be set: model options are generation options only "
        f"({', '.join(sorted(GENERATION_OPTIONS))}); where requests go, keys, clients and "
        "code are the platform's settings"
    )


def model_id_problem(model_id: str | None, provider: str | None) -> str | None:
    """Why ``model_id`` may not be used with ``provider`` (None: the platform's), or None:
    a URL (a client would take it as its server), or a ``python`` factory not allowed."""
    if model_id and "://" in model_id:
        return "a model's name, not a URL: the server is api_base"
    if provider_in_effect(provider, model_id) == "python":
        return python_model_problem(model_id)
    return None


def same_server(a: str | None, b: str | None) -> bool:
    """Whether two ``api_base`` values name one server (blank is the provider's default)."""
    return (a or "").strip().rstrip("/") == (b or "").strip().rstrip("/")


def spec_problems(provider: str | None, model_id: str | None, options: dict[str, Any]) -> list[str]:
    """Every problem of a spec's model id and options, as ``field: message``."""
    found = [f"model_id: {problem}"] if (problem := model_id_problem(model_id, provider)) else []
    if problem := options_problem(options, provider_in_effect(provider, model_id)):
        found.append(f"options: {problem}")
    return found


__all__ = [
    "GENERATION_OPTIONS",
    "key_env_problem",
    "model_id_problem",
    "options_problem",
    "provider_in_effect",
    "python_model_problem",
    "same_server",
    "spec_problems",
]
