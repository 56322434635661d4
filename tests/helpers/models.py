"""The tests' scripted models, which the python model provider may import.

The provider imports only the ``module:attr`` factories an operator lists in
``COUNTERSIGN_PYTHON_MODELS`` (core.definitions.model_rules); tests/conftest.py
sets it to these for the test process, and tests that start a runner as a
subprocess pass it on (``cli_env`` drops every ``COUNTERSIGN_*`` variable)."""

from __future__ import annotations

PYTHON_MODELS_ENV = "COUNTERSIGN_PYTHON_MODELS"
TEST_PYTHON_MODELS = ",".join(
    (
        "tests.integration.agents.scripted:ScriptedModel",
        "tests.integration.agents_teams.echo:EchoModel",
        "tests.integration.execution_logs.flaky:FlakyModel",
    )
)
