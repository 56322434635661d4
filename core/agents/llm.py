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
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from core.agents.ollama import ollama_base_url
from core.base.errors import ConfigurationError
from core.definitions.agents import (  # re-exported: the model settings read from the environment
    MODEL_ID_ENV,
    ModelSpec,
    effective_model_spec,
)

if TYPE_CHECKING:
    from smolagents import Model

REHEARSAL_LABEL = "rehearsal (no LLM)"

_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "inference_client": "HF_TOKEN"}
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


def _api_key(spec: ModelSpec) -> str | None:
    given = getattr(spec, "api_key", None)  # a tenant's key (core.tenants.registry.ResolvedModelSpec)
    if given is not None:
        return str(given.get_secret_value()) or None
    name = spec.api_key_env or _DEFAULT_KEY_ENV.get(str(spec.provider))
    return os.environ.get(name) if name else None


def build_model(spec: ModelSpec) -> Model:
    """A smolagents model for a non-rehearsal spec (see ``effective_model_spec``)."""
    import smolagents

    provider = spec.provider
    options = dict(spec.options)
    try:
        if provider == "openai":
            if not spec.model_id:
                raise ConfigurationError(
                    f"Set {MODEL_ID_ENV} (or the step's agent.model) to the model to ask, "
                    "e.g. llama3.1 on Ollama or gpt-4o-mini on OpenAI."
                )
            # Local servers (Ollama, vLLM, LM Studio) want some key; they ignore it.
            key = _api_key(spec) or ("not-needed" if spec.api_base else None)
            return smolagents.OpenAIServerModel(
                model_id=spec.model_id, api_base=spec.api_base, api_key=key, **options
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
                **options,
            )
        if provider == "inference_client":
            kwargs: dict[str, Any] = {"token": _api_key(spec), "base_url": spec.api_base, **options}
            if spec.model_id:
                kwargs["model_id"] = spec.model_id
            return smolagents.InferenceClientModel(**kwargs)
        if provider == "litellm":
            return smolagents.LiteLLMModel(
                model_id=spec.model_id, api_base=spec.api_base, api_key=_api_key(spec), **options
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

    module_name, _, attr = (target or "").partition(":")
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


def test_connection(spec: ModelSpec | dict[str, Any] | None = None) -> ConnectionResult:
    """Ask the configured model one tiny question; never raises."""
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
        model = build_model(_quick(effective))
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


def _quick(spec: ModelSpec) -> ModelSpec:
    """A connection test gives up after 15 s and does not retry (unless the spec says otherwise)."""
    if spec.provider not in ("openai", "ollama"):
        return spec
    options = dict(spec.options)
    options["client_kwargs"] = {"timeout": 15.0, "max_retries": 0, **dict(options.get("client_kwargs") or {})}
    return spec.model_copy(update={"options": options})
