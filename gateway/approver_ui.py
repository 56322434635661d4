"""The Gradio approver UI at ``/approve``: the signed-in user's pending
approvals and an answer form drawn from the request's JSON schema, validated by
the engine.

A request shows as ``core.approvals.presentation`` defines it
(``gateway.approver_view``: escaped HTML blocks). The call's arguments come
pre-filled in a JSON editor and a budget's amount in a number field; approving
sends what was changed in them (``{"arguments": {...}}``,
``{"approved_amount": N}``) to the engine, which checks the arguments against
the tool's input schema. A policy manager may also "approve, and allow calls
like this" (a standing rule with the vote, core.approvals.standing_rules).
The answer itself is a form of one widget per property of the schema
(``gateway.approver_form``), drawn again for each request with ``gr.render``,
its comment and its three buttons inside it: a click sends the values the
widgets hold at that moment, so nothing typed just before is lost. The HTTP
API keeps its shape (``/approve/gradio_api/run/approve|modify|reject`` with
the answer as JSON text), served by hidden inputs.

Sign-in is the gateway's (a session cookie from ``/login``), handed to Gradio
through ``auth_dependency``; without it Gradio answers 401 and the gateway
sends browsers to ``/login``. Every event that changes something must come
from this page (gateway.browser.ApproverUiGuard: same origin, and the CSRF
token the page's script sends from the ``countersign_csrf`` cookie), and no
other origin may read Gradio's API (its permissive localhost CORS is
removed). Messages quoting anything stored (refusals name approvers, fields,
values) are escaped Markdown (components.text.md), and no Markdown on the page
renders LaTeX (``NO_LATEX``). The handler functions
below take the user explicitly so they can be tested without a browser.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import gradio as gr
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from components.text import md
from core.approvals.standing_rules import DEFAULT_CONDITION_WORDS, MAX_DAYS
from core.base.errors import CountersignError
from gateway.approver_answers import (  # the handlers' data, tested without a browser
    UI_DECISIONS,
    answer,
    answer_form_of,
    call_editor,
    details,
    inbox,
    issued_for,
    issued_request,
    may_allow,
    waiting_line,
)
from gateway.approver_form import answer_of, draw, drawn_for_another, form_fields
from gateway.auth import session_user
from gateway.browser import GRADIO_HEAD, ApproverUiGuard

if TYPE_CHECKING:
    from gradio.blocks import BlockFunction
    from gradio.state_holder import SessionState

    from core.store.db import Database

log = structlog.get_logger(__name__)

MOUNT_PATH = "/approve"
DEFAULT_ALLOW_DAYS = 7
# Three looks for three decisions: approve stands out, a change is secondary, reject warns.
BUTTON_VARIANTS = {"Approve": "primary", "Approve with changes": "secondary", "Reject": "stop"}
REFRESH_SECONDS = 5
# Every Markdown on the page: no LaTeX. Gradio's default renders ``$$...$$`` through
# KaTeX, which would let agent text (escaped for HTML and Markdown, not for maths)
# colour, hide or fake what the approver reads.
NO_LATEX: list[dict[str, str | bool]] = []
FORM_NOT_READY = (
    "**Not sent:** the form was still being drawn for the request you chose. "
    "Check the answer and click again."
)


class _ApproverBlocks(gr.Blocks):
    """The page's Blocks. A click that left an earlier drawing of the answer form
    can reach the form's event (keyed, so it keeps its id) after another request's
    form is drawn: its values then do not fit the new widgets (fewer of them, or of
    another kind), and Gradio would refuse it before the handler with a bare
    "Error". Such a click reaches the handler instead as one drawn for no request,
    which refuses it in words (``FORM_NOT_READY``); nothing is sent either way."""

    async def preprocess_data(
        self,
        block_fn: BlockFunction,
        inputs: list[Any],
        state: SessionState | None,
        explicit_call: bool = False,
    ) -> list[Any]:
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except Exception as exc:
            if not getattr(block_fn.fn, "reads_drawn_form", False):
                raise
            log.info("approver.stale_form_click", error=type(exc).__name__)
            return stale_click(inputs, len(block_fn.inputs))


def stale_click(inputs: list[Any], count: int) -> list[Any]:
    """The form handler's ``count`` inputs for a click whose values fit no drawing:
    the request it was made on (its first input) and a form drawn for none, so the
    handler refuses it as not ready before it reads anything else."""
    approval_id = inputs[0] if inputs and isinstance(inputs[0], str) else None
    return [approval_id, ""] + [None] * (count - 2)


def build(db: Database) -> gr.Blocks:
    def _user(request: gr.Request | None) -> str | None:
        return getattr(request, "username", None) if request is not None else None

    def load(request: gr.Request) -> tuple[str, Any]:
        user = _user(request)
        if not user:
            return "Not signed in.", gr.update(choices=[], value=None)
        choices = inbox(db, user)
        return waiting_line(user, len(choices)), gr.update(choices=choices, value=None)

    def recount(
        approval_id: str | None, shown: list[str] | None, request: gr.Request
    ) -> tuple[str, Any, list[str]]:
        """Every few seconds: the count, and the list when it changed (the choice kept)."""
        user = _user(request)
        if not user:
            return "Not signed in.", gr.update(), shown or []
        choices = inbox(db, user)
        ids = [value for _, value in choices]
        if ids == (shown or []):
            return waiting_line(user, len(choices)), gr.update(), ids
        keep = approval_id if approval_id in ids else None
        return waiting_line(user, len(choices)), gr.update(choices=choices, value=keep), ids

    def show(
        approval_id: str | None, request: gr.Request
    ) -> tuple[str, str, dict[str, Any], str, float | None]:
        """The request's details and its call's editor (the HTTP API's ``details``)."""
        user = _user(request)
        if not user:
            return "Not signed in.", "{}", {}, "", None
        try:
            return (*details(db, user, approval_id), *call_editor(db, user, approval_id))
        except CountersignError as exc:
            return md(exc), "{}", {}, "", None

    def show_on_page(
        approval_id: str | None, request: gr.Request
    ) -> tuple[str, str, dict[str, Any], str, float | None, str]:
        """``show``, with what the call's editor was filled for (``call_for``: the request,
        its level and call digest, ``issued_for``; a click checks the request, as the
        form's ``drawn_for``, and the answer counts only while the level and call are
        still those shown)."""
        shown = show(approval_id, request)
        user = _user(request)
        try:
            drawn = issued_for(db, user, approval_id) if user and approval_id else ""
        except CountersignError:
            drawn = ""  # show() says why
        return (*shown, drawn)

    def show_form(
        approval_id: str | None, request: gr.Request
    ) -> tuple[dict[str, Any], Any, Any, Any, Any, Any]:
        """What the answer form is drawn from; the call's editor shown only for a guarded
        call and the amount only for a budget (their values come from ``show``); "allow
        calls like this" only for a guarded call the user may make standing rules for."""
        user = _user(request)
        try:
            form = answer_form_of(db, user, approval_id) if user else {}
            arguments_text, amount_now = call_editor(db, user, approval_id) if user else ("", None)
            like_this = may_allow(db, user, approval_id)
        except CountersignError:
            form, arguments_text, amount_now, like_this = {}, "", None, None  # show() says why
        return (
            form,
            gr.update(visible=bool(arguments_text)),
            gr.update(visible=amount_now is not None),
            gr.update(visible=like_this is not None),
            gr.update(value=False),  # never carried over from another request
            gr.update(value="", placeholder=like_this or ""),
        )

    def after(approval_id: str | None, message: str, request: gr.Request) -> tuple[str, Any, str]:
        """The message, the list (the request kept while it is still waiting) and the count."""
        user = _user(request)
        choices = inbox(db, user) if user else []
        keep = approval_id if any(value == approval_id for _, value in choices) else None
        count = waiting_line(user, len(choices)) if user else "Not signed in."
        return message, gr.update(choices=choices, value=keep), count

    def make_handler(button: str) -> Any:
        """The API's handler: the answer as JSON text (``/approve/gradio_api/run/<decision>``)."""

        def handle(
            approval_id: str | None,
            answer_json: str,
            comment: str,
            arguments_json: str,
            amount: float | None,
            request: gr.Request,
        ) -> tuple[str, Any, str]:
            message = answer(
                db, _user(request), approval_id, button, answer_json, comment, arguments_json or "", amount
            )
            return after(approval_id, message, request)

        return handle

    def make_form_handler(button: str) -> Any:
        """The page's handler: the answer from the drawn fields, sent with the click.

        The fields are read again from the request the form was drawn for
        (``drawn_for``), never from an earlier drawing: a click that raced the
        drawing of another request's form is not sent, and says so. So is one
        that raced the filling of the call's editor and amount (``call_for``,
        set by another event than the form's): the previous request's arguments
        would otherwise be sent as an edit of this one's call."""

        def handle(
            request: gr.Request,
            approval_id: str | None,
            drawn_for: str,
            call_for: str | None,
            arguments_json: str,
            amount: float | None,
            allow: bool,
            allow_days: float | None,
            allow_when: str,
            comment: str,
            *values: Any,
        ) -> tuple[str, Any, str]:
            user = _user(request)
            try:
                form = answer_form_of(db, user, approval_id) if user and approval_id else {}
                fields = form_fields(form.get("schema"), form.get("ui"))
                if drawn_for_another(approval_id, drawn_for, fields, values) or (
                    approval_id and issued_request(call_for) != approval_id
                ):
                    return after(approval_id, FORM_NOT_READY, request)
                data = answer_of(fields, list(values)) if UI_DECISIONS[button] != "reject" else {}
            except CountersignError as exc:
                problems = "".join(f"\n- {md(p)}" for p in getattr(exc, "problems", []))
                return after(approval_id, f"**Refused:** {md(exc)}{problems}", request)
            message = answer(
                db,
                user,
                approval_id,
                button,
                json.dumps(data),
                comment,
                arguments_json or "",
                amount,
                allow_for_days=float(allow_days or 0) if allow else None,
                allow_when=allow_when,
                issued_for=call_for,
            )
            return after(approval_id, message, request)

        handle.reads_drawn_form = True  # type: ignore[attr-defined]  # see _ApproverBlocks
        return handle

    with _ApproverBlocks(title="Countersign approvals", analytics_enabled=False) as blocks:
        gr.Markdown("## Your pending approvals", latex_delimiters=NO_LATEX)
        who = gr.Markdown(elem_id="cs-who", latex_delimiters=NO_LATEX)
        with gr.Row():
            # Choices change per user; the engine, not the widget, decides who may answer.
            choice = gr.Dropdown(
                label="Approval request", choices=[], elem_id="cs-choice", scale=4, allow_custom_value=True
            )
            refresh = gr.Button("Refresh", elem_id="cs-refresh", scale=1)
        info = gr.Markdown(elem_id="cs-details", latex_delimiters=NO_LATEX)
        # What the call's editor and the amount were filled for (by ``show``): the request,
        # its level and call digest (``issued_for``).
        call_for = gr.Textbox(value="", visible=False)
        with gr.Row():
            # The guarded call's arguments, pre-filled: what approving releases.
            arguments = gr.Code(
                value="",
                language="json",
                elem_id="cs-arguments",
                label="Call arguments (JSON): edit to approve with changes",
                visible=False,
            )
            amount = gr.Number(
                label="Approved amount (a budget; lower it to approve less)",
                elem_id="cs-amount",
                value=None,
                visible=False,
            )
        # A standing rule with the vote (core.approvals.standing_rules), as on the dashboard.
        with gr.Row(visible=False, elem_id="cs-allow-row") as allow_row:
            allow = gr.Checkbox(
                label="Approve, and allow calls like this for the days below",
                elem_id="cs-allow",
                interactive=True,  # its only listener is drawn later, with the form
            )
            allow_days = gr.Number(
                label="Days",
                value=DEFAULT_ALLOW_DAYS,
                minimum=1,
                maximum=MAX_DAYS,
                elem_id="cs-allow-days",
                interactive=True,
            )
            allow_when = gr.Textbox(
                label=f"Calls like this: a condition on the arguments (empty: {DEFAULT_CONDITION_WORDS})",
                elem_id="cs-allow-when",
                interactive=True,
            )
        # The answer form (fields drawn from the request's schema, the comment and the
        # three buttons) is drawn again whenever another request is chosen.
        form_area = gr.Column()
        result = gr.Markdown(elem_id="cs-result", latex_delimiters=NO_LATEX)
        form = gr.State({})
        with form_area:

            @gr.render(inputs=[form])
            def answer_form(current: dict[str, Any]) -> None:
                fields = form_fields(current.get("schema"), current.get("ui"))
                widgets = [w for w in (draw(f) for f in fields) if w is not None]
                # Which request these fields are for: sent with each click.
                drawn_for = gr.Textbox(value=current.get("id") or "", visible=False)
                comment = gr.Textbox(label="Comment", elem_id="cs-comment")
                # Which request the buttons answer, on the page too (a script, or a
                # test, waits for it before clicking: a click on an earlier drawing is
                # refused as not ready).
                with gr.Row(elem_classes=[f"cs-form-for-{current.get('id') or 'none'}"]):
                    buttons = [
                        gr.Button(
                            label,
                            elem_id=f"cs-{UI_DECISIONS[label]}",
                            variant=BUTTON_VARIANTS[label],  # type: ignore[arg-type]
                            key=f"cs-{UI_DECISIONS[label]}",
                        )
                        for label in UI_DECISIONS
                    ]
                for label, button in zip(UI_DECISIONS, buttons, strict=True):
                    # Keyed: the event keeps its id when the form is drawn again, so a
                    # click in flight meanwhile reaches the handler (which checks it).
                    button.click(
                        make_form_handler(label),
                        inputs=[
                            choice,
                            drawn_for,
                            call_for,
                            arguments,
                            amount,
                            allow,
                            allow_days,
                            allow_when,
                            comment,
                            *widgets,
                        ],
                        outputs=[result, choice, who],
                        api_visibility="private",
                        key=f"cs-decide-{UI_DECISIONS[label]}",
                    )

        # The HTTP API's inputs (the answer as JSON text), never shown: scripts and
        # the security tests post to /approve/gradio_api/run/<decision>.
        editor = gr.Code(value="{}", language="json", label="Answer (JSON)", visible=False)
        schema = gr.JSON(label="Answer schema", visible=False)
        api_comment = gr.Textbox(label="Comment", visible=False)
        api_buttons = [gr.Button(label, visible=False) for label in UI_DECISIONS]
        shown = gr.State([])
        timer = gr.Timer(REFRESH_SECONDS)
        timer.tick(
            recount,
            inputs=[choice, shown],
            outputs=[who, choice, shown],
            api_name="recount",
            show_progress="hidden",
        )
        blocks.load(load, inputs=None, outputs=[who, choice], api_name="inbox")
        refresh.click(load, inputs=None, outputs=[who, choice], api_name="refresh")
        choice.change(
            show_on_page,
            inputs=[choice],
            outputs=[info, editor, schema, arguments, amount, call_for],
            api_visibility="private",
        )
        # The HTTP API's view of a request (scripts: /approve/gradio_api/run/details).
        details_api = gr.Button(visible=False)
        details_api.click(
            show, inputs=[choice], outputs=[info, editor, schema, arguments, amount], api_name="details"
        )
        choice.change(
            show_form,
            inputs=[choice],
            outputs=[form, arguments, amount, allow_row, allow, allow_when],
            api_visibility="private",
        )
        for label, button in zip(UI_DECISIONS, api_buttons, strict=True):
            button.click(
                make_handler(label),
                inputs=[choice, editor, api_comment, arguments, amount],
                outputs=[result, choice, who],
                api_name=UI_DECISIONS[label],
            )
    return blocks


class _SignInRedirect:
    """Send a browser without a session to ``/login`` instead of Gradio's bare 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope.get("path") in (MOUNT_PATH, MOUNT_PATH + "/")
        ):
            request = Request(scope)
            if session_user(request) is None:
                await RedirectResponse(f"/login?next={MOUNT_PATH}/", status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount(app: FastAPI, db: Database) -> None:
    # GRADIO_HEAD: the page's script sends the CSRF token with each event it posts.
    def signed_in(request: Request) -> str | None:
        return session_user(request, db)

    gr.mount_gradio_app(
        app,
        build(db),
        path=MOUNT_PATH,
        auth_dependency=signed_in,
        footer_links=[],
        ssr_mode=False,
        head=GRADIO_HEAD,
    )
    app.add_middleware(_SignInRedirect)
    app.add_middleware(ApproverUiGuard, prefix=MOUNT_PATH)
