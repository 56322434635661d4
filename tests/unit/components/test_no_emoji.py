"""What the dashboard, the gateway and the approver pages show draws without an emoji
font (issue 15: "➕ New profile" was a broken glyph on a machine without one)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# Emoji and pictographs, dingbats, symbols and arrows drawn as emoji, the emoji variation selector.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f]")
SHOWN = ("app.py", "pages", "components", "gateway", "core/channels")
SUFFIXES = {".py", ".html", ".j2", ".jinja", ".css", ".js"}


def shown_files() -> list[Path]:
    files: list[Path] = []
    for name in SHOWN:
        path = ROOT / name
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
    return files


def test_no_emoji_glyph_in_what_the_product_shows() -> None:
    assert len(shown_files()) > 50  # the folders are where this test thinks they are
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in shown_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if EMOJI.search(line)
    ]
    assert found == []
