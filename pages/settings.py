"""Settings: what is configured (secrets masked), each with a test."""

from __future__ import annotations

import streamlit as st

from components.auth import signed_in
from components.services import get_services
from core import settings_report
from core.settings_report import Integration

user = signed_in()
services = get_services()
if not user.is_admin:
    st.error("Only admins can see the settings.")
    st.stop()

st.title("Settings")

st.header("Database")
for name, value in settings_report.database_info(services.db).items():
    st.markdown(f"**{name}:** `{value}`")
st.caption("Runner: " + ("external (RUNNER=external)" if services.runner is None
                         else f"in this process ({services.runner.runner_id})"))
if st.button("Test the database", key="settings.test.database"):
    outcome = settings_report.check_database(services.db)
    (st.success if outcome.ok else st.error)(outcome.message)


def integration_block(item: Integration, index: int) -> None:
    with st.container(border=True, key=f"settings.{item.kind}.{index}"):
        configured = item.configured()
        st.markdown(f"**{item.name}** · " + (":green-badge[configured]" if configured
                                              else ":gray-badge[not configured]"))
        if item.description:
            st.caption(item.description)
        st.dataframe({"setting": list(item.shown()), "value": list(item.shown().values())},
                     hide_index=True, key=f"settings.{item.kind}.{index}.values")
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
