"""Channel secrets: from the environment, else ``.streamlit/secrets.toml``.

Secrets never live in the database (``channel_configurations`` holds only
non-secret settings), so a database dump leaks no tokens.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

SECRETS_FILE_ENV = "COUNTERSIGN_SECRETS_FILE"
DEFAULT_SECRETS_FILE = Path(".streamlit/secrets.toml")


@lru_cache(maxsize=4)
def _load_file(path: str, mtime: float) -> dict[str, Any]:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def _file_secrets() -> dict[str, Any]:
    path = Path(os.environ.get(SECRETS_FILE_ENV) or DEFAULT_SECRETS_FILE)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    try:
        return _load_file(str(path), mtime)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def secret(name: str) -> str | None:
    """The secret ``name`` (an environment variable name), or None.

    The environment wins; ``.streamlit/secrets.toml`` may hold the same name
    at its top level.
    """
    value = os.environ.get(name)
    if value:
        return value
    from_file = _file_secrets().get(name)
    return str(from_file) if from_file not in (None, "") else None


def mask(value: str | None) -> str:
    """A secret as shown in settings: its presence and last characters only."""
    if not value:
        return "(not set)"
    if len(value) <= 8:
        return "••••"
    return "••••" + value[-4:]
