"""Language models for agents, chosen by configuration.

Environment variables (read when an agent runs):

- ``COUNTERSIGN_MODEL_PROVIDER``: ``openai`` (any OpenAI-compatible server:
  OpenAI, Ollama, vLLM, LM Studio), ``ollama`` (an Ollama server: its
  OpenAI-compatible ``/v1``; see ``core.agents.ollama``), ``inference_client`` (Hugging Face),
  ``litellm`` (Anthropic and others), ``transformers`` (local) or
  ``rehearsal``. Unset: task steps use the labelled rehearsal model.
  ``python`` loads your own ``smolagents.Model``: ``COUNTERSIGN_MODEL_ID`` is
  ``package.module:factory`` and the step's ``agent.model.options`` are passed
  to the factory.
- ``COUNTERSIGN_MODEL_ID``, ``COUNTERSIGN_MODEL_API_BASE``.
- ``COUNTERSIGN_MODEL_API_KEY_ENV``: the name of the variable holding the key
  (default per provider: ``OPENAI_API_KEY``, ``HF_TOKEN``, none for litellm,
  which reads its own variables). Keys are read from the environment only and
  never written to the database.

What a definition, profile or tenant may choose is checked when its settings are
(``core.definitions.model_rules``) and again here, when a model is built: the
``python`` provider imports only the factories in ``COUNTERSIGN_PYTHON_MODELS``,
``api_key_env`` names only an allowed key variable, options are generation
options, and the platform's key goes only to the platform's server: the
provider's default one or ``COUNTERSIGN_MODEL_API_BASE``. A spec pointing
elsewhere gets no key from the environment (a placeholder, so no client reads
one from the environment either); a tenant's own key goes where the tenant
resolution says (``core.tenants.registry.resolve_model_spec``).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from core.agents.ollama import ollama_base_url
from core.base.config import DEFAULT_KEY_ENVS
from core.base.errors import ConfigurationError
from core.definitions import model_rules
from core.definitions.agents import (  # re-exported: the model settings read from the environment
    API_BASE_ENV,
    MODEL_ID_ENV,
    ModelSpec,
    effective_model_spec,
)

if TYPE_CHECKING:
    from smolagents import Model

REHEARSAL_LABEL = "rehearsal (no LLM)"

# Sent instead of a key to a server that may not have the platform's: clients that
# get no key read one from the environment themselves (openai, huggingface_hub, litellm).
NO_KEY = "not-needed"
_PACKAGE_OF = {
    "openai": "openai",
    "litellm": "litellm",
    "transformers": "transformers",
    "inference_client": "huggingface_hub",
}


def model_label(spec: ModelSpec) -> str:
    if spec.provider == "rehearsal":
        return REHEARSAL_LABEL
    return f"{spec.provider}:{spec.model_id or 'default'}"


def on_platform_server(spec: ModelSpec) -> bool:
    """Whether the spec talks to a server the platform's key may go to: the
    provider's default (no ``api_base``), the platform's ``COUNTERSIGN_MODEL_API_BASE``
    or, for ``ollama``, the platform's Ollama server."""
    if not spec.api_base or model_rules.same_server(spec.api_base, os.environ.get(API_BASE_ENV)):
        return True
    return spec.provider == "ollama" and model_rules.same_server(
        ollama_base_url(spec.api_base), ollama_base_url()
    )


def _api_key(spec: ModelSpec) -> str | None:
    """The key to send, or None. A tenant's key (``ResolvedModelSpec.api_key``) as the
    tenant resolution decided; else the platform's, read from an allowed variable,
    only for the platform's server."""
    given = getattr(spec, "api_key", None)  # a tenant's key (core.tenants.registry.ResolvedModelSpec)
    if given is not None:
        return str(given.get_secret_value()) or None
    name = spec.api_key_env or DEFAULT_KEY_ENVS.get(str(spec.provider))
    if problem := model_rules.key_env_problem(name):
        raise ConfigurationError(f"agent.model.api_key_env: {problem}")
    if not name or not on_platform_server(spec):
        return None
    return os.environ.get(name)


def _key_or_placeholder(spec: ModelSpec) -> str | None:
    """``_api_key``, or ``NO_KEY`` off the platform's server so no client reads its own."""
    return _api_key(spec) or (None if on_platform_server(spec) else NO_KEY)


def _check(spec: ModelSpec) -> None:
    """The build-time check of what a definition may choose (defence in depth)."""
    problems = model_rules.spec_problems(spec.provider, spec.model_id, dict(spec.options))
    if problems:
        raise ConfigurationError(f"agent.model.{problems[0]}")


def build_model(spec: ModelSpec, *, client_kwargs: dict[str, Any] | None = None) -> Model:
    """A smolagents model for a non-rehearsal spec (see ``effective_model_spec``).

    ``client_kwargs`` (the platform's own, e.g. a connection test's timeout) go to the
    openai client; a spec's options cannot set them."""
    import smolagents

    _check(spec)
    provider = spec.provider
    options = dict(spec.options)
    client = {"client_kwargs": client_kwargs} if client_kwargs else {}
    try:
        if provider == "openai":
            if not spec.model_id:
                raise ConfigurationError(
                    f"Set {MODEL_ID_ENV} (or the step's agent.model) to the model to ask, "
                    "e.g. llama3.1 on Ollama or gpt-4o-mini on OpenAI."
                )
            # Local servers (Ollama, vLLM, LM Studio) want some key; they ignore it.
            key = _api_key(spec) or (NO_KEY if spec.api_base else None)
            return smolagents.OpenAIServerModel(
                model_id=spec.model_id, api_base=spec.api_base, api_key=key, **client, **options
            )
        if provider == "ollama":
            from core.agents.ollama import openai_base_url

            if not spec.model_id:
                raise ConfigurationError(
                    f"Set {MODEL_ID_ENV} (or the step's agent.model) to an Ollama model, e.g. llama3.1."
                )
            return smolagents.OpenAIServerModel(
                model_id=spec.model_id,
                api_base=openai_base_url(spec.api_base),
                api_key=_api_key(spec) or "ollama",
                **client,
                **options,
            )
        if provider == "inference_client":
            kwargs: dict[str, Any] = {
                "token": _key_or_placeholder(spec),
                "base_url": spec.api_base,
                **options,
            }
            if spec.model_id:
                kwargs["model_id"] = spec.model_id
            return smolagents.InferenceClientModel(**kwargs)
        if provider == "litellm":
            return smolagents.LiteLLMModel(
                model_id=spec.model_id, api_base=spec.api_base, api_key=_key_or_placeholder(spec), **options
            )
        if provider == "transformers":
            return smolagents.TransformersModel(model_id=spec.model_id, **options)
        if provider == "python":
            return _python_model(spec.model_id, options)
    except ModuleNotFoundError as exc:
        package = _PACKAGE_OF.get(str(provider), str(provider))
        raise ConfigurationError(
            f"The {provider} model provider needs the {package!r} package, which is not "
            f"installed: pip install {package} (smolagents says: {exc})"
        ) from exc
    raise ConfigurationError(
        f"Unknown model provider {provider!r}; use openai, ollama, "
        "inference_client, litellm, transformers, python or rehearsal."
    )


def _python_model(target: str | None, options: dict[str, Any]) -> Model:
    import importlib

    from smolagents import Model

    if problem := model_rules.python_model_problem(target):  # checked before anything is imported
        raise ConfigurationError(f"agent.model.model_id: {problem}")
    module_name, _, attr = (target or "").strip().partition(":")
    if not module_name or not attr:
        raise ConfigurationError("The python model provider needs a model id like 'package.module:factory'.")
    factory = getattr(importlib.import_module(module_name), attr)
    model = factory(**options)
    if not isinstance(model, Model):
        raise ConfigurationError(f"{target} did not return a smolagents Model.")
    return model


@dataclass(frozen=True)
class ConnectionResult:
    """What the dashboard's Settings page shows after "Test connection"."""

    ok: bool
    provider: str
    model: str
    message: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def test_connection(
    spec: ModelSpec | dict[str, Any] | None = None, *, timeout: float = 15.0
) -> ConnectionResult:
    """Ask the configured model one tiny question (``timeout`` seconds, no retries); never raises.

    The spec is checked and built as an agent's would be: the same factories, key
    variables, options and key-to-server rule."""
    from smolagents import ChatMessage, MessageRole

    started = time.monotonic()
    try:
        raw = ModelSpec.model_validate(spec) if isinstance(spec, dict) else spec
        effective = effective_model_spec(raw)
    except Exception as exc:  # noqa: BLE001 - reported to the user as text
        return ConnectionResult(False, "?", "?", f"Invalid model settings: {exc}", 0.0)
    label = model_label(effective)
    if effective.provider == "rehearsal":
        return ConnectionResult(
            True,
            "rehearsal",
            label,
            "No model is configured: task steps use the rehearsal model, "
            "which follows each step's plan and never calls an LLM.",
            0.0,
        )
    try:
        quick = {"timeout": timeout, "max_retries": 0} if effective.provider in ("openai", "ollama") else None
        model = build_model(effective, client_kwargs=quick)
        reply = model.generate(
            [ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": "Reply with: ok"}])]
        )
        text = str(reply.content or "").strip()
        message = f"The model answered: {text[:80]!r}"
        ok = True
    except Exception as exc:  # noqa: BLE001 - reported to the user as text
        message = plain_model_error(exc, effective)[:500]
        ok = False
    return ConnectionResult(ok, str(effective.provider), label, message, round(time.monotonic() - started, 3))


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


_PROVIDER_NAMES = {
    "openai": "OpenAI-compatible server",
    "ollama": "Ollama",
    "inference_client": "Hugging Face",
    "litellm": "LiteLLM",
    "transformers": "Transformers",
    "python": "Python model",
}


def _where(spec: ModelSpec) -> str:
    name = _PROVIDER_NAMES.get(str(spec.provider), str(spec.provider))
    if spec.provider == "ollama":
        return f"Ollama at {ollama_base_url(spec.api_base)}"
    return f"{name} at {spec.api_base}" if spec.api_base else name


def plain_model_error(exc: BaseException, spec: ModelSpec) -> str:
    """One line a person can act on: where, what went wrong, and the original error."""
    # smolagents wraps the client's error (AgentGenerationError); the cause is the useful part.
    inner: BaseException = exc
    while inner.__cause__ is not None and type(inner).__module__.startswith("smolagents"):
        inner = inner.__cause__
    original = f"{type(inner).__name__}: {inner}".replace("\n", " ")
    chain = " ".join(f"{type(e).__name__} {e}" for e in _chain(inner)).lower()
    status = getattr(inner, "status_code", None)
    if "timeout" in chain or "timed out" in chain:
        why = "no answer in time"
    elif "refused" in chain:
        why = "connection refused"
    elif "connect" in chain:
        why = "cannot connect"
    elif status is not None:
        why = f"answered HTTP {status}"
    elif "json" in chain or "decode" in chain or "choices" in chain:
        # The openai client hands back the raw text of a non-JSON reply; reading it fails later.
        why = "answered with something that is not an OpenAI-style reply"
    else:
        return f"{_where(spec)}: {original}"
    return f"{_where(spec)}: {why} ({original})"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
