"""Settings: what is configured (secrets masked), each with a test; roles and
permissions; API tokens; channel settings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import streamlit as st

from components.accounts import accounts_section
from components.auth import signed_in
from components.feedback import core_errors
from components.model_providers import model_providers_section
from components.policies import out_of_office_form
from components.services import get_services
from components.tokens import roles_table, tokens_section
from core.base.errors import Invalid
from core.channels.registry import read_channel_settings, store_channel_settings
from core.identity.permissions import Action, actions_for
from core.ops import settings_report
from core.outbox.settings import CHANNELS

if TYPE_CHECKING:
    from core.ops.settings_report import Integration


def parse_json_object(text: str, what: str) -> dict[str, object]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise Invalid(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(value, dict):
        raise Invalid(f"{what}: must be a JSON object.")
    return value


user = signed_in()
services = get_services()
can = actions_for(services.db, user.email)
if not can & {Action.CHANNELS_CONFIGURE, Action.USERS_MANAGE}:
    st.error("Only admins can see the settings.")
    st.stop()

st.title("Settings")

st.header("Database")
for name, value in settings_report.database_info(services.db).items():
    st.markdown(f"**{name}:** `{value}`")
st.caption(
    "Runner: "
    + (
        "external (RUNNER=external)"
        if services.runner is None
        else f"in this process ({services.runner.runner_id})"
    )
)
if st.button("Test the database", key="settings.test.database"):
    outcome = settings_report.check_database(services.db)
    (st.success if outcome.ok else st.error)(outcome.message)


def integration_block(item: Integration, index: int) -> None:
    with st.container(border=True, key=f"settings.{item.kind}.{index}"):
        configured = item.configured()
        st.markdown(
            f"**{item.name}** · "
            + (":green-badge[configured]" if configured else ":gray-badge[not configured]")
        )
        if item.description:
            st.caption(item.description)
        st.dataframe(
            {"setting": list(item.shown()), "value": list(item.shown().values())},
            hide_index=True,
            key=f"settings.{item.kind}.{index}.values",
        )
        if st.button(f"Test {item.name}", key=f"settings.test.{item.kind}.{index}"):
            if item.check is None:
                st.info(f"{item.name}: no test is available.")
            else:
                with st.spinner(f"Testing {item.name}…"):
                    outcome = item.check(services.db, user.email)
                (st.success if outcome.ok else st.warning)(outcome.message)


st.header("Channels")
for index, item in enumerate(settings_report.integrations("channel")):
    integration_block(item, index)
st.header("Model providers")
for index, item in enumerate(settings_report.integrations("model")):
    integration_block(item, index)
model_providers_section(services.db)  # Ollama's models, a test per configured provider


st.header("Roles and permissions")
st.caption(
    "What each role may do; core checks it for every interface (dashboard, REST API, CLI). "
    "The person who started a workflow may also pause, resume and cancel it."
)
roles_table()

if Action.USERS_MANAGE in can:
    st.header("API tokens")
    st.caption(
        "Tokens for the REST API act as an account, within their scopes (never more than "
        "the account's role) and until they expire or are revoked. An agent that starts "
        "workflows gets a service account and a token scoped to workflows:start."
    )
    tokens_section(services.db, user)
    st.header("Accounts")
    st.caption(
        "A disabled account keeps its history and tokens but acts nowhere: its sessions "
        "end, and its sign-in, API tokens, email links and Slack clicks are refused until "
        "it is enabled again."
    )
    accounts_section(services.db, user)
    st.header("Out of office")
    st.caption(
        "Requests addressed to a person away go to their delegate until the date "
        "(core/approvals/delegation.py). Each person sets their own on the Policies page."
    )
    out_of_office_form(services.db, user.email, any_person=True, key="settings.ooo")

if Action.CHANNELS_CONFIGURE not in can:
    st.stop()
st.header("Channel settings")
st.caption(
    "Non-secret settings only (hosts, senders, user maps, webhook URLs). Secrets stay in "
    "the environment or .streamlit/secrets.toml."
)
for channel in CHANNELS:
    enabled, current = read_channel_settings(services.db, channel)
    with st.expander(f"{channel} settings", expanded=False):
        with st.form(key=f"channel.{channel}.form"):
            new_enabled = st.checkbox("Enabled", value=enabled, key=f"channel.{channel}.enabled")
            text = st.text_area(
                "Settings (JSON object)",
                value=json.dumps(current, indent=2),
                key=f"channel.{channel}.settings",
            )
            if st.form_submit_button("Save", key=f"channel.{channel}.save"):
                with core_errors():
                    store_channel_settings(
                        services.db,
                        channel,
                        enabled=new_enabled,
                        settings=parse_json_object(text, "Settings"),
                        actor=user.email,
                    )
                    st.success(f"Saved the {channel} settings.")
