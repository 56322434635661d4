"""One logging setup for every process: structlog, with stdlib logging routed through it.

``configure_logging()`` is called once by each entry point (the CLI, the
dashboard, the gateway). Output goes to stderr:

- ``COUNTERSIGN_LOG_FORMAT=json``: one JSON object per line (production);
  ``console``: coloured, readable lines. Unset: console when stderr is a
  terminal, JSON otherwise (a service manager, a container, a pipe).
- ``COUNTERSIGN_LOG_LEVEL``: DEBUG, INFO (default), WARNING, ERROR, for
  Countersign's own loggers (and uvicorn's); other libraries log WARNING and
  up unless it is DEBUG.

Lines carry the structlog context variables bound by the engine
(``workflow_id``, ``step``, ``approval_id``, ``actor``, ``notification_id``),
so a line from deep inside a channel still says which workflow it is about.
Records from stdlib loggers (uvicorn, SQLAlchemy, httpx) get the same
processors and format.

Secrets never reach the output: ``redact_secrets`` replaces the value of any
key that looks like a secret (token, secret, password, api_key,
authorization), every occurrence of a configured secret's value (the
variables in ``SECRET_ENV_VARS``, from the environment or the secrets file)
and the value of any ``token=`` URL parameter (signed email links) with
``***``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

FORMAT_ENV = "COUNTERSIGN_LOG_FORMAT"
LEVEL_ENV = "COUNTERSIGN_LOG_LEVEL"
REDACTED = "***"

# Every secret the project reads (comma-separated lists are split).
SECRET_ENV_VARS = (
    "COUNTERSIGN_LINK_SECRETS",
    "COUNTERSIGN_SESSION_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SENDGRID_API_KEY",
    "COUNTERSIGN_SMTP_PASSWORD",
    "COUNTERSIGN_WEBHOOK_SECRET",
    "COUNTERSIGN_WEBHOOK_IN_SECRET",
    "OPENAI_API_KEY",
    "HF_TOKEN",
    "COUNTERSIGN_SECRETS_KEY",
)
LIST_SECRETS = frozenset({"COUNTERSIGN_LINK_SECRETS", "COUNTERSIGN_SECRETS_KEY"})
# Shorter values would redact ordinary words; real secrets are longer.
MIN_SECRET_LENGTH = 6

_SECRET_KEY = re.compile(r"token|secret|passw|api_?key|authorization|cookie", re.IGNORECASE)
_TOKEN_PARAM = re.compile(r"(token=)[^&\s\"'<>]+", re.IGNORECASE)
_BEARER = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


_cache: tuple[tuple[str | None, ...], float, tuple[str, ...]] | None = None
# The secrets file is re-read at most this often (the environment at once).
SECRETS_CACHE_SECONDS = 5.0


def _secret_values() -> tuple[str, ...]:
    """The configured secrets' values, cached: this runs for every log line."""
    global _cache
    env = tuple(os.environ.get(name) for name in SECRET_ENV_VARS)
    env = (*env, os.environ.get("COUNTERSIGN_SECRETS_FILE"))
    now = time.monotonic()
    if _cache is not None and _cache[0] == env and now - _cache[1] < SECRETS_CACHE_SECONDS:
        return _cache[2]
    values = _read_secret_values()
    _cache = (env, now, values)
    return values


def _read_secret_values() -> tuple[str, ...]:
    from core.base.secrets import secret

    values: set[str] = set()
    for name in SECRET_ENV_VARS:
        raw = secret(name)
        if not raw:
            continue
        parts = raw.split(",") if name in LIST_SECRETS else [raw]
        values.update(p.strip() for p in parts if len(p.strip()) >= MIN_SECRET_LENGTH)
    # Longest first, so a secret containing another is replaced whole.
    return tuple(sorted(values, key=len, reverse=True))


def _scrub_text(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _TOKEN_PARAM.sub(r"\1" + REDACTED, text)
    return _BEARER.sub(r"\1" + REDACTED, text)


def _scrub(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if depth > 6:
        return value
    if isinstance(value, MutableMapping | dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                else _scrub(v, secrets, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, secrets, depth + 1) for v in value]
    if isinstance(value, bytes | int | float | bool) or value is None:
        return value
    return _scrub_text(str(value), secrets)


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: no secret value, secret-named field or link token survives."""
    secrets = _secret_values()
    for key in list(event_dict):
        value = event_dict[key]
        if key in ("_record", "_from_structlog"):
            continue
        if _SECRET_KEY.search(key) and value not in (None, ""):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(value, secrets)
    return event_dict


def _render_exception_text(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Tracebacks become text before redaction (they may quote a secret)."""
    return structlog.processors.format_exc_info(_logger, _method, event_dict)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def resolve_format(stream: TextIO | None = None) -> str:
    chosen = (os.environ.get(FORMAT_ENV) or "").strip().lower()
    if chosen in ("json", "console"):
        return chosen
    target = stream or sys.stderr
    isatty = getattr(target, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def resolve_level() -> int:
    name = (os.environ.get(LEVEL_ENV) or "INFO").strip().upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


# Loggers at COUNTERSIGN_LOG_LEVEL; every other library logs warnings and up
# (alembic and httpx are chatty at INFO), unless the level is DEBUG.
OWN_LOGGERS = ("core", "cli", "gateway", "components", "pages", "app", "__main__", "uvicorn")

_lock = threading.Lock()
_configured: tuple[str, int, int] | None = None
_HANDLER_NAME = "countersign"


def configure_logging(
    *,
    fmt: str | None = None,
    level: int | str | None = None,
    stream: TextIO | None = None,
    force: bool = False,
) -> str:
    """Configure structlog and the stdlib root logger; returns the format used.

    Idempotent: a second call with the same settings does nothing (Streamlit
    reruns, tests), unless ``force``.
    """
    global _configured
    out = stream or sys.stderr
    chosen = fmt or resolve_format(out)
    numeric = (
        resolve_level()
        if level is None
        else (level if isinstance(level, int) else logging.getLevelName(level.upper()))
    )
    if not isinstance(numeric, int):
        numeric = logging.INFO
    key = (chosen, numeric, id(out))
    with _lock:
        if _configured == key and not force:
            return chosen
        renderer: Processor = (
            structlog.processors.JSONRenderer(default=str)
            if chosen == "json"
            else structlog.dev.ConsoleRenderer(colors=getattr(out, "isatty", lambda: False)())
        )
        final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
        if chosen == "json":
            final.append(_render_exception_text)
        final += [redact_secrets, renderer]
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(), processors=final
        )
        handler = logging.StreamHandler(out)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(formatter)
        root = logging.getLogger()
        for existing in list(root.handlers):
            if existing.get_name() == _HANDLER_NAME:
                root.removeHandler(existing)
        root.addHandler(handler)
        root.setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(numeric)
        # Uvicorn installs its own handlers; send its records to ours instead.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            named = logging.getLogger(name)
            named.handlers.clear()
            named.propagate = True
        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                *_shared_processors(),
                structlog.stdlib.PositionalArgumentsFormatter(),
                structlog.processors.UnicodeDecoder(),
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
        _configured = key
    return chosen
