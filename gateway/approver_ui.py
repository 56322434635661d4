"""The Gradio approver UI at ``/approve``: the signed-in user's pending
approvals and an answer form drawn from the request's JSON schema, validated by
the engine.

A request shows as ``core.approvals.presentation`` defines it
(``gateway.approver_view``: escaped HTML blocks). The call's arguments come
pre-filled in a JSON editor; a budget's amount is the answer form's one
"Approved amount" field (its amount argument is not in the editor, as on the
dashboard). Approving sends what was changed (``{"arguments": {...}}``,
``{"approved_amount": N}``) to the engine, which checks the arguments against
the tool's input schema. Only the buttons that apply are drawn (no "Approve with
changes" where nothing can change; "Run now" and "Veto" in a veto window). A
policy manager may also "approve, and allow calls like this" (a standing rule
with the vote, core.approvals.standing_rules).
The answer itself is a form of one widget per property of the schema
(``gateway.approver_form``), drawn again for each request with ``gr.render``,
its comment and its buttons inside it: a click sends the values the
widgets hold at that moment, so nothing typed just before is lost. An answer
counts only for the level and call the page showed; one refused as out of date
draws the request again as it is now, saying what changed. The HTTP API keeps
its shape (``/approve/gradio_api/run/approve|modify|reject`` with the answer as
JSON text), served by hidden inputs; ``details`` also returns what it showed
(``shown``), which an answer sends back as its last input (without it, the
answer counts only for the request as first asked).

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
    DECISION_BUTTONS,
    UI_DECISIONS,
    answer,
    answer_form_of,
    call_editor,
    details,
    form_drawing,
    inbox,
    issued_for,
    issued_request,
    may_allow,
    refusal,
    respond,
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
BUTTON_VARIANTS = {"approve": "primary", "modify": "secondary", "reject": "stop"}
REFRESH_SECONDS = 5
# Every Markdown on the page: no LaTeX. Gradio's default renders ``$$...$$`` through
# KaTeX, which would let agent text (escaped for HTML and Markdown, not for maths)
# colour, hide or fake what the approver reads.
NO_LATEX: list[dict[str, str | bool]] = []
FORM_NOT_READY = (
    "**Not sent:** the form was still being drawn for the request you chose. "
    "Check the answer and click again."
)
ARGUMENTS_LABEL = "Call arguments (JSON): edit to approve with changes"
# A budget's amount argument is the answer form's approved amount, not an argument to edit.
BUDGET_ARGUMENTS_LABEL = ARGUMENTS_LABEL + " (the amount is the Approved amount field below)"


class _ApproverBlocks(gr.Blocks):
    """The page's Blocks. A click that left an earlier drawing of the answer form
    can reach the form's event (keyed, so it keeps its id) after another request's
    form is drawn: its values then do not fit the new widgets (fewer of them, or of
    another kind), and Gradio would refuse it before the handler with a bare
    "Error". Such a click reaches the handler instead as one drawn for no request,
    which refuses it in words (``FORM_NOT_READY``); nothing is sent either way.

    The HTTP API's answers take what ``details`` showed as their last input
    (``shown``); a script written before it sends one value fewer, which Gradio
    would refuse with a bare error: it reaches the handler as an answer that says
    nothing of what it was given for (counted only for the request as first asked)."""

    async def preprocess_data(
        self,
        block_fn: BlockFunction,
        inputs: list[Any],
        state: SessionState | None,
        explicit_call: bool = False,
    ) -> list[Any]:
        if getattr(block_fn.fn, "shown_last", False) and len(inputs) == len(block_fn.inputs) - 1:
            inputs = [*inputs, None]
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
    ) -> tuple[str, str, dict[str, Any], str, float | None, str]:
        """The HTTP API's ``details``: the request, the prefilled answer and its schema, the
        call's editor, a budget's amount, and what was shown (``shown``: the request, its
        level and call digest, ``issued_for``), which an answer sends back."""
        user = _user(request)
        if not user:
            return "Not signed in.", "{}", {}, "", None, ""
        try:
            return (
                *details(db, user, approval_id),
                *call_editor(db, user, approval_id),
                issued_for(db, user, approval_id) if approval_id else "",
            )
        except CountersignError as exc:
            return md(exc), "{}", {}, "", None, ""

    def page_view(approval_id: str | None, user: str | None) -> tuple[str, str, str]:
        """The request (HTML), its call's arguments for the editor, and what the editor was
        filled for (``call_for``: the request, its level and call digest, ``issued_for``;
        a click checks the request, as the form's ``drawn_for``, and the answer counts
        only while the level and call are still those shown)."""
        if not user:
            return "Not signed in.", "", ""
        try:
            info = details(db, user, approval_id)[0]
            arguments_text = call_editor(db, user, approval_id)[0]
            drawn = issued_for(db, user, approval_id) if approval_id else ""
        except CountersignError as exc:
            return md(exc), "", ""
        return info, arguments_text, drawn

    def show_on_page(approval_id: str | None, request: gr.Request) -> tuple[str, str, str]:
        return page_view(approval_id, _user(request))

    def form_view(approval_id: str | None, user: str | None) -> tuple[dict[str, Any], Any, Any, Any, Any]:
        """What the answer form is drawn from (fields, buttons, what is shown); the call's
        editor shown only for a guarded call (a budget's amount is the form's field);
        "allow calls like this" only for a guarded call the user may make standing rules
        for."""
        try:
            form = form_drawing(db, user, approval_id) if user else {}
            arguments_text, amount_now = call_editor(db, user, approval_id) if user else ("", None)
            like_this = may_allow(db, user, approval_id)
        except CountersignError:
            form, arguments_text, amount_now, like_this = {}, "", None, None  # the view says why
        return (
            form,
            gr.update(
                visible=bool(arguments_text),
                label=BUDGET_ARGUMENTS_LABEL if amount_now is not None else ARGUMENTS_LABEL,
            ),
            gr.update(visible=like_this is not None),
            gr.update(value=False),  # never carried over from another request
            gr.update(value="", placeholder=like_this or ""),
        )

    def show_form(approval_id: str | None, request: gr.Request) -> tuple[dict[str, Any], Any, Any, Any, Any]:
        return form_view(approval_id, _user(request))

    def after(approval_id: str | None, message: str, request: gr.Request) -> tuple[str, Any, str]:
        """The message, the list (the request kept while it is still waiting) and the count."""
        user = _user(request)
        choices = inbox(db, user) if user else []
        keep = approval_id if any(value == approval_id for _, value in choices) else None
        count = waiting_line(user, len(choices)) if user else "Not signed in."
        return message, gr.update(choices=choices, value=keep), count

    def make_handler(button: str) -> Any:
        """The API's handler: the answer as JSON text (``/approve/gradio_api/run/<decision>``),
        with what ``details`` showed last (``shown``; see _ApproverBlocks)."""

        def handle(
            approval_id: str | None,
            answer_json: str,
            comment: str,
            arguments_json: str,
            amount: float | None,
            shown: str | None,
            request: gr.Request,
        ) -> tuple[str, Any, str]:
            message = answer(
                db,
                _user(request),
                approval_id,
                button,
                answer_json,
                comment,
                arguments_json or "",
                amount,
                issued_for=shown or None,
            )
            return after(approval_id, message, request)

        handle.shown_last = True  # type: ignore[attr-defined]  # see _ApproverBlocks
        return handle

    # What a page click changes besides the message, the list and the count: after an
    # answer refused as out of date, the request as it is now (else nothing).
    redrawn_count = 7

    def make_form_handler(decision: str) -> Any:
        """The page's handler: the answer from the drawn fields, sent with the click.

        The fields are read again from the request the form was drawn for
        (``drawn_for``), never from an earlier drawing: a click that raced the
        drawing of another request's form is not sent, and says so. So is one
        that raced the filling of the call's editor (``call_for``, set by another
        event than the form's): the previous request's arguments would otherwise
        be sent as an edit of this one's call. An answer refused because the
        request moved on since the page showed it draws the request again as it
        is now (the view, the editor, what it is shown as, the form), saying what
        changed, so the approver sees what they would now approve."""

        def handle(
            request: gr.Request,
            approval_id: str | None,
            drawn_for: str,
            call_for: str | None,
            arguments_json: str,
            allow: bool,
            allow_days: float | None,
            allow_when: str,
            comment: str,
            *values: Any,
        ) -> tuple[Any, ...]:
            user = _user(request)
            unchanged = (gr.skip(),) * redrawn_count
            fields: list[Any] = []
            try:
                form = answer_form_of(db, user, approval_id) if user and approval_id else {}
                fields = form_fields(form.get("schema"), form.get("ui"))
                if drawn_for_another(approval_id, drawn_for, fields, values) or (
                    approval_id and issued_request(call_for) != approval_id
                ):
                    return (*after(approval_id, FORM_NOT_READY, request), *unchanged)
                data = answer_of(fields, list(values)) if decision != "reject" else {}
            except CountersignError as exc:
                return (*after(approval_id, refusal(exc, fields), request), *unchanged)
            answered = respond(
                db,
                user,
                approval_id,
                DECISION_BUTTONS[decision],
                json.dumps(data),
                comment,
                arguments_json or "",
                allow_for_days=float(allow_days or 0) if allow else None,
                allow_when=allow_when,
                issued_for=call_for,
            )
            if answered.outdated is None:
                return (*after(approval_id, answered.message, request), *unchanged)
            message, listed, count = after(approval_id, "", request)
            if not (isinstance(listed, dict) and listed.get("value") == approval_id):
                gone = (
                    f"**Not recorded:** the request changed ({md(answered.outdated)}) "
                    "and no longer waits for your answer."
                )
                return (gone, listed, count, *unchanged)
            info, arguments_text, drawn = page_view(approval_id, user)
            drawing, arguments_shown, allow_row_shown, allow_off, allow_when_now = form_view(
                approval_id, user
            )
            message = (
                f"**Not recorded: this request changed after the page showed it** "
                f"({md(answered.outdated)}). It is shown again as it is now: check the call "
                "and your answer, then answer again."
            )
            return (
                message,
                listed,
                count,
                info,
                {**arguments_shown, "value": arguments_text},
                drawn,
                drawing,
                allow_row_shown,
                allow_off,
                allow_when_now,
            )

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
        # What the call's editor was filled for (by ``show_on_page``): the request, its
        # level and call digest (``issued_for``).
        call_for = gr.Textbox(value="", visible=False)
        # The guarded call's arguments, pre-filled: what approving releases.
        arguments = gr.Code(
            value="",
            language="json",
            elem_id="cs-arguments",
            label=ARGUMENTS_LABEL,
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
        # buttons that apply) is drawn again whenever another request is chosen, or the
        # chosen one is shown again as it is now.
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
                # The buttons that apply to this request, by decision (none before one is chosen).
                offered = {decision: label for label, decision in current.get("buttons") or []}
                # Which request the buttons answer, on the page too (a script, or a
                # test, waits for it before clicking: a click on an earlier drawing is
                # refused as not ready).
                with gr.Row(elem_classes=[f"cs-form-for-{current.get('id') or 'none'}"]):
                    # Every decision's button is drawn, those that do not apply hidden:
                    # keyed, each event keeps its id whatever the request.
                    buttons = [
                        gr.Button(
                            offered.get(decision, label),
                            elem_id=f"cs-{decision}",
                            variant=BUTTON_VARIANTS[decision],  # type: ignore[arg-type]
                            key=f"cs-{decision}",
                            preserved_by_key=None,  # the label is the request's ("Veto")
                            visible=decision in offered,
                        )
                        for label, decision in UI_DECISIONS.items()
                    ]
                for decision, button in zip(UI_DECISIONS.values(), buttons, strict=True):
                    # Keyed: the event keeps its id when the form is drawn again, so a
                    # click in flight meanwhile reaches the handler (which checks it).
                    button.click(
                        make_form_handler(decision),
                        inputs=[
                            choice,
                            drawn_for,
                            call_for,
                            arguments,
                            allow,
                            allow_days,
                            allow_when,
                            comment,
                            *widgets,
                        ],
                        outputs=[
                            result,
                            choice,
                            who,
                            info,
                            arguments,
                            call_for,
                            form,
                            allow_row,
                            allow,
                            allow_when,
                        ],
                        api_visibility="private",
                        key=f"cs-decide-{decision}",
                    )

        # The HTTP API's inputs (the answer as JSON text), never shown: scripts and
        # the security tests post to /approve/gradio_api/run/<decision>.
        editor = gr.Code(value="{}", language="json", label="Answer (JSON)", visible=False)
        schema = gr.JSON(label="Answer schema", visible=False)
        api_comment = gr.Textbox(label="Comment", visible=False)
        # A budget's amount for the HTTP API (the page's is the answer form's field).
        amount = gr.Number(label="Approved amount", value=None, visible=False)
        # What ``details`` showed (``issued_for``), sent back with an API answer.
        api_shown = gr.Textbox(label="Shown", value="", visible=False)
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
            outputs=[info, arguments, call_for],
            api_visibility="private",
        )
        # The HTTP API's view of a request (scripts: /approve/gradio_api/run/details).
        details_api = gr.Button(visible=False)
        details_api.click(
            show,
            inputs=[choice],
            outputs=[info, editor, schema, arguments, amount, api_shown],
            api_name="details",
        )
        choice.change(
            show_form,
            inputs=[choice],
            outputs=[form, arguments, allow_row, allow, allow_when],
            api_visibility="private",
        )
        for label, button in zip(UI_DECISIONS, api_buttons, strict=True):
            button.click(
                make_handler(label),
                inputs=[choice, editor, api_comment, arguments, amount, api_shown],
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
