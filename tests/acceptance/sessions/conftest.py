"""The conversation fixtures (two tenants, their people and a flow), reused."""

from tests.integration.conversations.conftest import model, people  # noqa: F401  (fixtures)
