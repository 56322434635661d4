"""The embedded default database is one file, whichever directory a command starts in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.acceptance.core.conftest import ROOT

SHOW_URL = "from core.runtime import configured_database_url as u; print(u())"


def _configured_url(cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", SHOW_URL], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_default_is_the_roots_file_from_any_directory(tmp_path: Path) -> None:
    from_root = _configured_url(ROOT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _configured_url(elsewhere) == from_root
    assert from_root.endswith(str(ROOT / "data" / "countersign.db"))
    assert not (elsewhere / "data").exists()


def test_a_settings_file_in_the_current_directory_still_names_the_database(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'mine.db'}\n")
    assert _configured_url(tmp_path).endswith(str(tmp_path / "mine.db"))
