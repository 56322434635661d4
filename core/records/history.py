"""A workflow's state at any event, folded from its events.

Events record what changed, not the whole state: a ``step.completed`` event
holds the position it moved and its own output as a reference to the step
run that holds it (``{"$step_run": id}``), so no event grows with the steps
before it. The state before and after any event is derived here by folding
the events in order:

* scalar keys (``status``, ``current_step``) in ``after`` replace the state's;
* ``context`` and ``step_outputs`` in ``after`` are merged key by key
  (a full copy, as events written before this format hold, merges to the
  same result);
* ``workflow.rolled_back`` replaces ``context`` and ``step_outputs`` whole.

The Workflow page's event diff and ``workflow show --at`` use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.store.tables import StepRun, Workflow, WorkflowEvent

if TYPE_CHECKING:
    from core.store.db import Database

STEP_RUN_REF = "$step_run"
MERGED = ("context", "step_outputs")
REPLACING_EVENTS = frozenset({"workflow.rolled_back"})


def output_ref(run_id: int) -> dict[str, int]:
    """What an event stores for a step's output: the step run holding it."""
    return {STEP_RUN_REF: run_id}


def ref_of(value: Any) -> int | None:
    if isinstance(value, dict) and len(value) == 1 and STEP_RUN_REF in value:
        ref = value[STEP_RUN_REF]
        return ref if isinstance(ref, int) else None
    return None


def initial_state(workflow: Workflow) -> dict[str, Any]:
    """The state before the first event: nothing run, the starting context."""
    definition = workflow.definition or {}
    return {
        "status": None,
        "current_step": 0,
        "context": {**(definition.get("context") or {}), **(workflow.input_data or {})},
        "step_outputs": {},
    }


def referenced_runs(events: Iterable[Any]) -> set[int]:
    """The step runs whose outputs the events refer to."""
    refs: set[int] = set()
    for event in events:
        for side in (event.before, event.after):
            for value in ((side or {}).get("step_outputs") or {}).values():
                ref = ref_of(value)
                if ref is not None:
                    refs.add(ref)
    return refs


def resolve(value: dict[str, Any] | None, outputs: dict[int, Any]) -> dict[str, Any] | None:
    """``value`` (an event's before or after) with output references replaced by the outputs."""
    if not value or not isinstance(value.get("step_outputs"), dict):
        return value
    resolved = {}
    for name, output in value["step_outputs"].items():
        ref = ref_of(output)
        resolved[name] = outputs.get(ref) if ref is not None else output
    return {**value, "step_outputs": resolved}


def apply(state: dict[str, Any], event_type: str, after: dict[str, Any] | None) -> dict[str, Any]:
    """The state after an event whose (resolved) ``after`` is given."""
    if not after:
        return state
    new = dict(state)
    for key, value in after.items():
        if key in MERGED and isinstance(value, dict) and event_type not in REPLACING_EVENTS:
            new[key] = {**(state.get(key) or {}), **value}
        else:
            new[key] = value
    return new


def fold(
    initial: dict[str, Any], events: Sequence[Any], outputs: dict[int, Any]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(state before, state after) for each event, in order."""
    states = []
    state = initial
    for event in events:
        after = apply(state, event.event_type, resolve(event.after, outputs))
        states.append((state, after))
        state = after
    return states


def load_outputs(session: Any, run_ids: Iterable[int]) -> dict[int, Any]:
    ids = sorted(set(run_ids))
    outputs: dict[int, Any] = {}
    for start in range(0, len(ids), 500):
        outputs.update(
            session.execute(
                select(StepRun.id, StepRun.output).where(StepRun.id.in_(ids[start : start + 500]))
            ).all()
        )
    return outputs


@dataclass(frozen=True)
class EventView:
    """An event as people read it: output references replaced by the outputs."""

    id: int
    event_type: str
    actor: str
    step_name: str | None
    approval_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    data: dict[str, Any]
    created_at: Any


def readable(session: Any, events: Sequence[WorkflowEvent]) -> list[EventView]:
    """The events with the outputs they refer to filled in (one SELECT)."""
    outputs = load_outputs(session, referenced_runs(events))
    return [
        EventView(
            e.id,
            e.event_type,
            e.actor,
            e.step_name,
            e.approval_id,
            resolve(e.before, outputs),
            resolve(e.after, outputs),
            e.data or {},
            e.created_at,
        )
        for e in events
    ]


def readable_events(db: Database, events: Sequence[WorkflowEvent]) -> list[EventView]:
    with db.read() as session:
        return readable(session, events)


def states_at(
    db: Database, workflow_id: str, event_id: int, *, tenant: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The workflow's whole state just before and just after event ``event_id``."""
    from core.records import rows as store

    with db.read() as session:
        workflow = store.get_workflow(session, workflow_id, tenant=tenant)
        events = session.scalars(
            select(WorkflowEvent)
            .where(WorkflowEvent.workflow_id == workflow_id, WorkflowEvent.id <= event_id)
            .order_by(WorkflowEvent.id)
        ).all()
        if not events or events[-1].id != event_id:
            raise KeyError(f"Workflow {workflow_id} has no event {event_id}.")
        outputs = load_outputs(session, referenced_runs(events))
        return fold(initial_state(workflow), events, outputs)[-1]


__all__ = [
    "STEP_RUN_REF",
    "output_ref",
    "ref_of",
    "initial_state",
    "referenced_runs",
    "resolve",
    "apply",
    "fold",
    "load_outputs",
    "EventView",
    "readable",
    "readable_events",
    "states_at",
]
