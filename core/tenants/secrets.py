"""Tenants' API keys, encrypted at rest with Fernet.

The key comes from ``COUNTERSIGN_SECRETS_KEY`` (the environment, else
``.streamlit/secrets.toml``), never from the database: a dump of
``tenant_secrets`` holds only Fernet tokens. Several comma-separated keys
make a ``MultiFernet``: the first encrypts, all decrypt, so a key is rotated
by putting the new one first, running ``rotate_tenant_secrets`` (``python -m
core tenants secrets rotate``) and then dropping the old one.

Values are never shown back: listings give names and a mask. Only
``tenant_secret_value`` decrypts, for the model settings resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select

from core.base.errors import (
    InvalidTenantSettings,
    SecretsKeyError,
    SecretUndecryptable,
    TenantSecretNotFound,
)
from core.identity.permissions import check_can_manage_tenants
from core.records import rows as store
from core.store.tables import TenantSecret, utcnow
from core.store.tenancy import tenant_row

if TYPE_CHECKING:
    from core.store.db import Database

SECRETS_KEY_ENV = "COUNTERSIGN_SECRETS_KEY"
MASK = "••••••••"
MAX_SECRET_LENGTH = 10_000
GENERATE_HINT = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def secrets_cipher() -> MultiFernet:
    """The Fernet keys from ``COUNTERSIGN_SECRETS_KEY``, newest (the encrypting one) first."""
    from core.base.secrets import secret

    raw = secret(SECRETS_KEY_ENV)
    keys = [k.strip() for k in (raw or "").split(",") if k.strip()]
    if not keys:
        raise SecretsKeyError(
            f"{SECRETS_KEY_ENV} is not set, so tenant secrets cannot be stored "
            f"or read. Make a key with {GENERATE_HINT} and set it."
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise SecretsKeyError(
                f"{SECRETS_KEY_ENV}: key {position} of {len(keys)} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes); make one with {GENERATE_HINT}."
            ) from None
    return MultiFernet(fernets)


def encrypt_secret(value: str) -> str:
    return secrets_cipher().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    try:
        return secrets_cipher().decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUndecryptable() from None


@dataclass(frozen=True)
class SecretInfo:
    """What a listing shows of a secret: never its value."""

    name: str
    masked: str
    updated_at: datetime


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidTenantSettings(
            ["name: letters, digits, '-' and '_' only, 1 to 100 characters"], what="secret"
        )
    return name


def set_tenant_secret(
    db: Database, tenant: str, name: str, value: str, *, actor: str = "system"
) -> SecretInfo:
    """Store (or replace) a tenant's secret, encrypted; the event records its name only."""
    name = _check_name(name)
    if not value or len(value) > MAX_SECRET_LENGTH:
        raise InvalidTenantSettings([f"value: 1 to {MAX_SECRET_LENGTH} characters"], what="secret")
    ciphertext = encrypt_secret(value)  # before any write: a key problem writes nothing
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        tenant_row(session, tenant)
        row = session.get(TenantSecret, (tenant, name))
        now = utcnow()
        if row is None:
            row = TenantSecret(tenant=tenant, name=name, created_at=now)
            session.add(row)
        row.ciphertext = ciphertext
        row.updated_at = now
        store.append_event(session, "tenant.secret_set", actor, data={"tenant": tenant, "name": name})
        return SecretInfo(name, MASK, now)


def list_tenant_secrets(db: Database, tenant: str) -> list[SecretInfo]:
    """The tenant's secrets: names and a mask, never values (no key needed)."""
    with db.read() as session:
        tenant_row(session, tenant)
        rows = session.scalars(
            select(TenantSecret).where(TenantSecret.tenant == tenant).order_by(TenantSecret.name)
        ).all()
        return [SecretInfo(r.name, MASK, r.updated_at) for r in rows]


def delete_tenant_secret(db: Database, tenant: str, name: str, *, actor: str = "system") -> None:
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        tenant_row(session, tenant)
        row = session.get(TenantSecret, (tenant, name))
        if row is None:
            raise TenantSecretNotFound(f"Tenant {tenant!r} has no secret named {name!r}.")
        session.delete(row)
        store.append_event(session, "tenant.secret_deleted", actor, data={"tenant": tenant, "name": name})


def tenant_secret_value(db: Database, tenant: str, name: str) -> str | None:
    """The decrypted secret, or None when the tenant has none of that name."""
    with db.read() as session:
        ciphertext = session.scalar(
            select(TenantSecret.ciphertext).where(TenantSecret.tenant == tenant, TenantSecret.name == name)
        )
    return None if ciphertext is None else decrypt_secret(ciphertext)


def rotate_tenant_secrets(db: Database, *, actor: str = "system") -> int:
    """Re-encrypt every secret with the first key of ``COUNTERSIGN_SECRETS_KEY``; returns how many."""
    cipher = secrets_cipher()
    with db.session() as session:
        check_can_manage_tenants(session, actor)
        rows = session.scalars(select(TenantSecret).with_for_update()).all()
        for row in rows:
            try:
                row.ciphertext = cipher.rotate(row.ciphertext.encode("ascii")).decode("ascii")
            except InvalidToken:
                raise SecretUndecryptable(
                    f"The secret {row.name!r} of tenant {row.tenant!r} cannot be decrypted with "
                    f"any key in {SECRETS_KEY_ENV}; nothing was rotated."
                ) from None
            row.updated_at = utcnow()
        store.append_event(session, "tenant.secrets_rotated", actor, data={"count": len(rows)})
        return len(rows)


__all__ = [
    "SECRETS_KEY_ENV",
    "MASK",
    "SecretInfo",
    "secrets_cipher",
    "encrypt_secret",
    "decrypt_secret",
    "set_tenant_secret",
    "list_tenant_secrets",
    "delete_tenant_secret",
    "tenant_secret_value",
    "rotate_tenant_secrets",
]
