"""The README's retry examples load as written: ``on:`` is the retry policy's field, not
YAML 1.1's ``true`` (the definition loader reads the keys on/off/yes/no as text;
values keep their meaning)."""

from __future__ import annotations

import re
from pathlib import Path

from core.definitions.definition_text import load_definition_text, read_definition_text
from core.definitions.retry_policy import RetryPolicy

README = Path(__file__).resolve().parents[3] / "README.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_workflow_with_a_step_retry_loads_as_written() -> None:
    [block] = [b for b in yaml_blocks() if "on: [transient]}" in b]
    definition = load_definition_text(block)
    deploy = definition.steps[definition.step_index("deploy")]
    assert deploy.retry is not None
    assert (deploy.retry.max_attempts, deploy.retry.on) == (5, ["transient"])
    assert (deploy.retry.backoff.initial, deploy.retry.backoff.max) == (2.0, 300.0)


def test_the_readme_workflow_retry_block_loads_as_written() -> None:
    [block] = [b for b in yaml_blocks() if b.startswith("retry:") and "on: [transient]" in b]
    text = "name: retried\n" + block + "steps:\n  - {name: a, type: tool, tool: t}\n"
    definition = load_definition_text(text)
    assert definition.retry is not None
    assert (definition.retry.max_attempts, definition.retry.on) == (3, ["transient"])


def test_keys_on_off_yes_no_are_text_and_values_keep_their_meaning() -> None:
    data = read_definition_text("a: {on: 1, Off: 2, YES: 3, no: 4, true: 5}\nb: [no, on, yes, off]\n")
    assert data == {"a": {"on": 1, "Off": 2, "YES": 3, "no": 4, True: 5}, "b": [False, True, True, False]}


def test_a_retry_policy_read_by_another_yaml_1_1_loader_keeps_its_on() -> None:
    assert RetryPolicy.model_validate({True: ["any"], "max_attempts": 2}).on == ["any"]
