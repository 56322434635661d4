"""Every YAML example of docs/policy.md is a valid workflow definition, and the
features they show behave as the page says (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.definitions.workflow import parse_definition

DOC = Path(__file__).resolve().parents[3] / "docs" / "policy.md"


def yaml_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [yaml.safe_load(block) for block in blocks]


def test_the_page_has_one_example_per_definition_feature() -> None:
    names = [example["name"] for example in yaml_examples()]
    assert names == [
        "refunds",
        "orders",
        "pay an invoice",
        "deploy",
        "Vendor payment with escalation",
        "Nightly price update",
    ]


@pytest.mark.parametrize("example", yaml_examples(), ids=lambda e: e["name"])
def test_each_yaml_example_loads(example: dict[str, Any]) -> None:
    definition = parse_definition(example)
    assert definition.steps


def test_the_examples_mean_what_the_page_says() -> None:
    refunds, orders, _, deploy = (parse_definition(e) for e in yaml_examples()[:4])
    assert refunds.steps[0].approval_gate == "args.amount > 1000 or input.country not in ['DE', 'FR']"
    from core.definitions.agents import resolve_spec

    spec = resolve_spec(orders.steps[0].agent)
    assert spec.held_tools == ["refund_order", "charge_card"]
    assert spec.held_when == {"charge_card": "args.amount > 100"}
    config = deploy.steps[0].approval_config
    assert config is not None and config.backup is not None
    assert (config.backup.to, config.backup.after) == ("director@example.com", 0.5)
