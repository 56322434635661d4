"""The outputs of a workflow's earlier steps as templates and agents read them:
each read from the step run holding it, once per claim (``StepOutputs``), and
the scope a template is rendered in (``scope_of``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.store.tables import StepRun, Workflow, output_visible_now, outputs_query

if TYPE_CHECKING:
    from core.store.db import Database


__all__ = ["StepOutputs", "scope_of", "scope_values"]


class StepOutputs(dict[str, Any]):
    """The outputs of a workflow's earlier steps, as templates read them.

    ``${steps.x.key}`` looks ``x`` up here: its output is read from the step
    run holding it on first use (one small SELECT), then kept for the rest
    of the claim, and each step completed in the claim is recorded as it
    completes. Nothing here grows with the number of earlier steps that no
    template names. ``everything()`` is the whole mapping (a task's agent is
    shown every earlier output).
    """

    def __init__(self, db: Database, workflow_id: str) -> None:
        super().__init__()
        self._db = db
        self._workflow_id = workflow_id
        self._absent: set[str] = set()

    def _has(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if dict.__contains__(self, name):
            return True
        if name in self._absent:
            return False
        with self._db.read() as session:
            row = session.execute(
                select(StepRun.output)
                .where(
                    StepRun.workflow_id == self._workflow_id, StepRun.step_name == name, output_visible_now()
                )
                .order_by(StepRun.id.desc())
                .limit(1)
            ).first()
        if row is None:
            self._absent.add(name)
            return False
        dict.__setitem__(self, name, row[0])
        return True

    def __contains__(self, name: object) -> bool:
        return self._has(name)

    def __getitem__(self, name: str) -> Any:
        if not self._has(name):
            raise KeyError(name)
        return dict.__getitem__(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return dict.__getitem__(self, name) if self._has(name) else default

    def record(self, name: str, output: Any) -> None:
        """A step of this claim completed with ``output``."""
        dict.__setitem__(self, name, output)
        self._absent.discard(name)

    def everything(self) -> dict[str, Any]:
        with self._db.read() as session:
            outputs: dict[str, Any] = dict(session.execute(outputs_query(self._workflow_id)).all())
        # Whatever this claim recorded is newest (and may not be committed yet).
        return {**outputs, **dict(self.items())}


def scope_of(workflow: Workflow, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What templates and agents may read: input, context, earlier outputs, workflow."""
    return scope_values(
        workflow.id,
        workflow.name,
        workflow.input_data,
        workflow.context,
        workflow.step_outputs if outputs is None else outputs,
    )


def scope_values(
    workflow_id: str, name: str, input_data: Any, context: Any, outputs: dict[str, Any]
) -> dict[str, Any]:
    """``scope_of`` from the row's values (a path that read them without the ORM)."""
    return {
        "input": input_data,
        "context": context,
        "steps": outputs,
        "workflow": {"id": workflow_id, "name": name},
    }
