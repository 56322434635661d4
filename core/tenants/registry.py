"""Tenants: organisations sharing one Countersign, their flows and model settings.

- **Tenants** (``tenants``): a slug, a name and settings. Users, workflows,
  approval requests and chat sessions carry a ``tenant``; who sees what is
  ``core.store.tenancy`` (re-exported here: ``tenant_scope``, ``can_see``...).
- **Flows** (``tenant_flows``): a tenant's named conversation flows, each an
  agent type, its tools and parameters; a chat session runs one flow
  (``core.tenants.flows``, re-exported here; ``flow_agent_spec`` builds its agent).
- **Secrets** (``tenant_secrets``): API keys, Fernet-encrypted
  (``core.tenants.secrets``, re-exported here).
- **Model settings**: ``resolve_model_spec`` layers platform, tenant and user.

Every change records a ``tenant.*`` event (without a workflow) naming who
did it; secrets' events carry their names only. Bad input is refused whole,
with each problem named by its field, and writes nothing.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy import func, select

from core.base.errors import (
    InvalidTenantSettings,
    NotFound,
    TenantExists,
    TenantInUse,
)
from core.definitions.agents import ModelSpec
from core.definitions.model_rules import same_server, spec_problems
from core.identity.permissions import check_can_manage_tenants
from core.records import rows as store
from core.store.tables import ChatSession, Tenant, TenantFlow, TenantSecret, User, Workflow, utcnow
from core.store.tenancy import (
    PLATFORM,
    TenantScope,
    can_see,
    tenant_of,
    tenant_row,
    tenant_scope,
    user_tenant,
)
from core.tenants.flows import (
    AGENT_TYPES,
    FLOW_PARAMETERS,
    FlowFields,
    flow_agent_spec,
    flow_dict,
    get_flow,
    list_flows,
    remove_flow,
    save_flow,
)
from core.tenants.flows import validation_problems as _problems
from core.tenants.secrets import (
    MASK,
    SECRETS_KEY_ENV,
    SecretInfo,
    delete_tenant_secret,
    list_tenant_secrets,
    rotate_tenant_secrets,
    set_tenant_secret,
    tenant_secret_value,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.store.db import Database

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# The tenant secret holding the key sent to the tenant's model provider.
MODEL_API_KEY_SECRET = "model_api_key"
Provider = Literal["rehearsal", "openai", "inference_client", "litellm", "transformers", "python"]


# -- tenants ----------------------------------------------------------------------------


def create_tenant(db: Database, slug: str, *, name: str = "", actor: str = "system") -> Tenant:
    slug = slug.strip()
    if not SLUG_PATTERN.fullmatch(slug):
        raise InvalidTenantSettings(
            [
                "slug: lowercase letters, digits and '-', starting with a "
                "letter or digit, at most 63 characters"
            ],
            what="tenant",
        )
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        if session.get(Tenant, slug) is not None:
            raise TenantExists(f"A tenant with the slug {slug!r} already exists.")
        now = utcnow()
        tenant = Tenant(slug=slug, name=name.strip() or slug, settings={}, created_at=now, updated_at=now)
        session.add(tenant)
        store.append_event(session, "tenant.created", actor, data={"tenant": slug, "name": tenant.name})
        return tenant


def list_tenants(db: Database) -> list[Tenant]:
    with db.read() as session:
        return list(session.scalars(select(Tenant).order_by(Tenant.slug)).all())


def get_tenant(db: Database, slug: str) -> Tenant:
    with db.read() as session:
        return tenant_row(session, slug)


def tenant_usage(db: Database, slug: str) -> dict[str, int]:
    """How many users, workflows and chat sessions belong to the tenant."""
    with db.read() as session:
        tenant_row(session, slug)
        return _usage(session, slug)


def _usage(session: Session, slug: str) -> dict[str, int]:
    return {
        "users": int(session.scalar(select(func.count()).where(User.tenant == slug)) or 0),
        "workflows": int(session.scalar(select(func.count()).where(Workflow.tenant == slug)) or 0),
        "sessions": int(session.scalar(select(func.count()).where(ChatSession.tenant == slug)) or 0),
    }


def delete_tenant(db: Database, slug: str, *, actor: str = "system") -> None:
    """Delete a tenant with its flows and secrets; refused while anything else belongs to it.

    Who may is checked first: what a tenant holds is told only to those who manage
    tenants (a refusal says nothing of it, nor whether the tenant exists)."""
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        tenant = tenant_row(session, slug)
        used = {k: n for k, n in _usage(session, slug).items() if n}
        if used:
            raise TenantInUse(
                f"Tenant {slug!r} still has "
                + ", ".join(f"{k} ({n})" for k, n in used.items())
                + "; move or remove them first."
            )
        for model in (TenantFlow, TenantSecret):
            for row in session.scalars(select(model).where(model.tenant == slug)).all():
                session.delete(row)
        session.flush()
        session.delete(tenant)
        store.append_event(session, "tenant.deleted", actor, data={"tenant": slug})


# -- model settings ------------------------------------------------------------------------


class TenantModelSettings(BaseModel):
    """What a tenant may set about its model. Its API key is the tenant secret
    ``model_api_key``, never a setting."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider | None = None
    model_id: str | None = Field(default=None, max_length=200)
    api_base: str | None = Field(default=None, max_length=500)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_base")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None


class UserModelSettings(BaseModel):
    """What a user may set: which of the tenant's models, and its options."""

    model_config = ConfigDict(extra="forbid")

    model_id: str | None = Field(default=None, max_length=200)
    options: dict[str, Any] = Field(default_factory=dict)


def _validated(model: type[BaseModel], raw: dict[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidTenantSettings(["model: must be a JSON object"], what=what)
    try:
        return model.model_validate(raw).model_dump(exclude_none=True, exclude_defaults=True)
    except ValidationError as exc:
        problems = _problems(exc)
        if any(k in raw for k in ("api_key", "key", "token")):
            problems.append(
                f"keys are secrets: store one with `tenants secrets set TENANT {MODEL_API_KEY_SECRET}`"
            )
        raise InvalidTenantSettings(problems, what=what) from None


def _check_model_choice(clean: dict[str, Any], provider: str | None, what: str) -> None:
    """Refuse what no tenant or user may choose (``core.definitions.model_rules``): a
    ``python`` factory the operator did not allow, a URL as model id, options beyond
    plain generation options."""
    problems = spec_problems(provider, clean.get("model_id"), dict(clean.get("options") or {}))
    if problems:
        raise InvalidTenantSettings(problems, what=what)


def set_tenant_model_settings(
    db: Database, slug: str, model: dict[str, Any], *, actor: str = "system"
) -> Tenant:
    """Replace the tenant's model settings (validated as ``TenantModelSettings``)."""
    clean = _validated(TenantModelSettings, model, "tenant model settings")
    _check_model_choice(clean, clean.get("provider"), "tenant model settings")
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        tenant = tenant_row(session, slug)
        before = dict(tenant.settings or {})
        tenant.settings = {**before, "model": clean}
        tenant.updated_at = utcnow()
        store.append_event(
            session,
            "tenant.settings_changed",
            actor,
            before=before,
            after=tenant.settings,
            data={"tenant": slug},
        )
        return tenant


def set_user_model_settings(
    db: Database, email: str, model: dict[str, Any], *, actor: str = "system"
) -> User:
    """Replace a user's own model settings (validated as ``UserModelSettings``)."""
    clean = _validated(UserModelSettings, model, "user model settings")
    with db.session() as session:
        user = session.get(User, email.strip().lower())
        if user is None:
            raise NotFound(f"No user {email!r}.")
        if actor.strip().lower() != user.email:
            check_can_manage_tenants(session, actor)
        row = session.get(Tenant, user.tenant) if user.tenant else None
        provider = ((row.settings or {}).get("model") or {}).get("provider") if row is not None else None
        _check_model_choice(clean, provider, "user model settings")
        user.settings = {**(user.settings or {}), "model": clean}
        user.updated_at = utcnow()
        store.append_event(session, "user.settings_changed", actor, data={"user": user.email, "model": clean})
        return user


class ResolvedModelSpec(ModelSpec):
    """A ``ModelSpec`` that may carry a tenant's decrypted key (never dumped or shown)."""

    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)


def resolve_model_spec(
    db: Database,
    tenant: str | None,
    user_email: str | None,
    step: ModelSpec | None = None,
    *,
    flow: ModelSpec | None = None,
) -> ModelSpec:
    """The model a tenant's user gets, in layers, later ones winning:

    1. **platform**: the environment (``COUNTERSIGN_MODEL_*``), as without
       tenants, completed by ``step`` (a task step's agent model: the
       platform's templates and profiles, which a tenant's settings override);
    2. **tenant** (``tenants.settings["model"]``): ``provider``, ``model_id``,
       ``api_base``, ``options`` (merged key by key), and the key in the
       tenant secret ``model_api_key``, decrypted;
    3. **user** (``users.settings["model"]``): ``model_id`` and ``options``
       (merged) only; a user cannot send the tenant's key elsewhere;
    4. **flow** (optional): a tenant flow's own ``parameters.model``, the
       most specific: its set ``provider``, ``model_id``, ``api_base`` and
       ``options`` win (flows are the tenant's, set by platform admins).

    ``api_key_env`` is platform-only. When the layers point at another
    provider or server than the platform's, the platform's key is never sent
    there: the tenant's key is used, or none. The step is a definition, which
    anyone who may start a workflow writes: when its ``api_base`` is the server
    the model ends up on (no tenant or flow names one, and it is not the
    platform's), neither the tenant's key nor the platform's is sent there.
    """
    from core.definitions.agents import API_BASE_ENV, effective_model_spec

    platform = effective_model_spec(step)
    layered = platform.model_dump()
    key: SecretStr | None = None
    with db.read() as session:
        row = session.get(Tenant, tenant) if tenant else None
        user = session.get(User, user_email.strip().lower()) if user_email else None
        tenant_model = dict((row.settings or {}).get("model") or {}) if row is not None else {}
        user_model = dict((user.settings or {}).get("model") or {}) if user is not None else {}
    flow_model = flow.model_dump(include=flow.model_fields_set) if flow is not None else {}
    for layer, allowed in (
        (tenant_model, ("provider", "model_id", "api_base")),
        (user_model, ("model_id",)),
        (flow_model, ("provider", "model_id", "api_base")),
    ):
        for field in allowed:
            if layer.get(field):
                layered[field] = layer[field]
        layered["options"] = {**layered["options"], **dict(layer.get("options") or {})}
    # The server a trusted layer chose: the flow's, the tenant's, else the environment's.
    trusted_base = flow_model.get("api_base") or tenant_model.get("api_base") or os.environ.get(API_BASE_ENV)
    if not same_server(layered["api_base"], trusted_base):
        key = SecretStr("")  # the definition's own server gets no key of ours
    elif row is not None:
        stored = tenant_secret_value(db, row.slug, MODEL_API_KEY_SECRET)
        moved = (layered["provider"], layered["api_base"]) != (platform.provider, platform.api_base)
        if stored is not None:
            key = SecretStr(stored)
        elif moved:
            key = SecretStr("")  # the platform's key stays with the platform's server
    return ResolvedModelSpec(**layered, api_key=key)


def model_spec_for_workflow(db: Database, workflow_id: str, step: ModelSpec | None) -> ModelSpec:
    """A task step's model: ``resolve_model_spec`` for a tenant's workflow (its
    starter being the user), the platform's otherwise."""
    from core.definitions.agents import effective_model_spec

    with db.read() as session:
        workflow = session.get(Workflow, workflow_id)
        tenant, starter = (workflow.tenant, workflow.created_by) if workflow else (None, None)
    if tenant is None:
        return effective_model_spec(step)
    return resolve_model_spec(db, tenant, starter, step)


def tenant_dict(row: Tenant) -> dict[str, Any]:
    return {
        "slug": row.slug,
        "name": row.name,
        "settings": dict(row.settings or {}),
        "created_at": row.created_at.isoformat(),
    }


__all__ = [
    # who sees what (core.store.tenancy)
    "PLATFORM",
    "TenantScope",
    "tenant_scope",
    "can_see",
    "tenant_of",
    "user_tenant",
    "tenant_row",
    # tenants, flows, settings
    "check_can_manage_tenants",
    "create_tenant",
    "list_tenants",
    "get_tenant",
    "tenant_usage",
    "delete_tenant",
    "TenantModelSettings",
    "UserModelSettings",
    "set_tenant_model_settings",
    "set_user_model_settings",
    "ResolvedModelSpec",
    "resolve_model_spec",
    "model_spec_for_workflow",
    "FlowFields",
    "FLOW_PARAMETERS",
    "save_flow",
    "list_flows",
    "get_flow",
    "remove_flow",
    "flow_agent_spec",
    "flow_dict",
    "tenant_dict",
    "MODEL_API_KEY_SECRET",
    "AGENT_TYPES",
    # secrets (core.tenants.secrets)
    "SECRETS_KEY_ENV",
    "MASK",
    "SecretInfo",
    "set_tenant_secret",
    "list_tenant_secrets",
    "delete_tenant_secret",
    "tenant_secret_value",
    "rotate_tenant_secrets",
]
