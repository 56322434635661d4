"""The PostgreSQL statements of the runner's Core paths, by name.

The batch claim (``core.engine.claim_queue``), the start of a claimed plain
step (``core.engine.start_path``), a step's outcome with the next start
(``core.engine.step_path``) and a workflow's finish (``core.engine.finish_path``).
All are written in the driver's parameter style (``%(name)s``): those that write
all or nothing are sent with their COMMIT in one round trip
(``core.engine.pipelined``), the others run through ``exec_driver_sql``. SQLite
runs the same writes as SQLAlchemy Core statements, in the paths' own modules.
"""

from __future__ import annotations

__all__ = [
    "CLAIM",
    "FINISH",
    "FINISH_JSON",
    "FINISH_UNREAD",
    "LOCK_HEAD_AND_WEBHOOKS",
    "LOCK_BY_ID",
    "LOCK_NEXT_ID_AND_HEAD",
    "LOCK_ONLY",
    "NEXT_ID_AND_HEAD",
    "PG_HEAD",
    "PG_LOCK_WHERE",
    "PG_NEXT_ID",
    "PG_POSITION",
    "PG_RUN_COMPLETED",
    "PG_STEP_GUARD",
    "READ_FOR_START",
    "START",
    "START_UNREAD",
    "STEP",
    "STEP_JSON",
]

# -- shared fragments --

# The workflow as the caller left it: this runner's lease, running, at the finished run.
PG_POSITION = """workflows.id = %(workflow_id)s AND workflows.lease_owner = %(runner_id)s
   AND workflows.status = 'running' AND workflows.current_step = %(index)s
   AND workflows.current_step_run_id = %(run_id)s"""
# The locking statement's condition: the row lock is the trail's chain lock
# (core.records.trail).
PG_LOCK_WHERE = "\n WHERE " + PG_POSITION + "\n   FOR UPDATE OF workflows\n"
# The first CTE's condition in the step and finish statements: the position, the run
# still running, and no trail entry appended since the head the caller sealed after.
PG_STEP_GUARD = (
    "\n     WHERE "
    + PG_POSITION
    + """
       AND EXISTS (SELECT 1 FROM step_runs WHERE id = %(run_id)s AND status = 'running')
       AND NOT EXISTS (SELECT 1 FROM workflow_events
                        WHERE trail_chain = %(workflow_id)s AND trail_seq > %(head_seq)s)
       AND NOT EXISTS (SELECT 1 FROM approval_responses
                        WHERE trail_chain = %(workflow_id)s AND trail_seq > %(head_seq)s)
"""
)
# The chain's head (as ``stored_head`` reads it), joined to the workflow's row.
PG_HEAD = """
  LEFT JOIN LATERAL (
      SELECT seq, digest FROM (
          (SELECT trail_seq AS seq, trail_hash AS digest FROM workflow_events
            WHERE trail_chain = %(workflow_id)s ORDER BY trail_seq DESC LIMIT 1)
          UNION ALL
          (SELECT trail_seq, trail_hash FROM approval_responses
            WHERE trail_chain = %(workflow_id)s ORDER BY trail_seq DESC LIMIT 1)
      ) AS heads ORDER BY seq DESC LIMIT 1
  ) AS head ON true
"""
# The finished run completed with its output, once the first CTE (``moved``) matched.
PG_RUN_COMPLETED = """), done AS (
    UPDATE step_runs SET status = 'completed', output = %(output)s, finished_at = %(now)s
     WHERE id = %(run_id)s AND EXISTS (SELECT 1 FROM moved)
    RETURNING id
"""
# Draws a step run's id (for its idempotency key, sealed into its events before they
# are written).
PG_NEXT_ID = "nextval(pg_get_serial_sequence('step_runs', 'id'))"


# -- a step's outcome and the next start (core.engine.step_path) --

# The four writes as one statement (data-modifying CTEs). It writes all or nothing, so
# committing it unseen is safe: every condition is checked by the first CTE, on the
# workflow's row this transaction already holds (the locking statement before it) and
# in a snapshot taken under that lock (the run still ``running``, the trail's head not
# moved since it was read); each later CTE runs on the row before it and has no
# condition of its own. When the first matches nothing, no row comes back and the
# COMMIT only lets go of the lock. It also draws an id for the step after (``Ahead``).
STEP = (
    """
WITH moved AS (
    UPDATE workflows
       SET current_step = %(next_index)s,
           current_step_run_id = %(next_id)s,
           updated_at = %(now)s, engine_errors = 0"""
    + PG_STEP_GUARD
    + """    RETURNING current_step_run_id AS next_id, context
"""
    + PG_RUN_COMPLETED
    + """), started AS (
    INSERT INTO step_runs (id, workflow_id, step_index, step_name, step_type, status,
                           attempt, started_at, executed_by, idempotency_key)
    SELECT moved.next_id, %(workflow_id)s, %(next_index)s, %(next_name)s, %(next_type)s, 'running', 1,
           %(now)s, %(runner_id)s, %(prefix)s || moved.next_id
      FROM moved, done
    RETURNING id, idempotency_key
), logged AS (
    INSERT INTO workflow_events (workflow_id, event_type, actor, step_name, before, after,
                                 data, created_at, trail_chain, trail_seq, trail_prev, trail_hash)
    SELECT %(workflow_id)s, 'step.completed', %(runner_id)s, %(name)s, %(before)s, %(after)s,
           %(completed_data)s, %(now)s, %(chain)s, %(seq_done)s, %(prev_done)s, %(hash_done)s FROM started
    UNION ALL
    SELECT %(workflow_id)s, 'step.started', %(runner_id)s, %(next_name)s, NULL, NULL,
           %(started_data)s, %(now)s, %(chain)s, %(seq_started)s, %(prev_started)s, %(hash_started)s
      FROM started
)
SELECT started.id, started.idempotency_key, moved.context, """
    + PG_NEXT_ID
    + """ AS id_ahead
  FROM started, moved
"""
)
STEP_JSON = ("output", "before", "after", "completed_data", "started_data")

# Before the step statement: lock the workflow's row while it is still as the caller
# left it, draw the next run's id and read the chain's head, so both events can be
# sealed before they are written; one round trip. The head is read with this
# statement's snapshot: had it waited for the lock while another writer appended to
# the chain, the head would be stale, which the step statement (a later snapshot,
# taken under the lock) checks before it writes anything (``head_seq``).
LOCK_NEXT_ID_AND_HEAD = (
    "SELECT " + PG_NEXT_ID + ", head.seq, head.digest FROM workflows" + PG_HEAD + PG_LOCK_WHERE
)
# When the head and the next id are known (``Ahead``): only the lock, sent in the same
# pipeline as the step statement, which runs after it in a snapshot taken under the
# lock (and checks the same conditions itself).
LOCK_ONLY = "SELECT 1 FROM workflows" + PG_LOCK_WHERE


# -- the start of a claimed plain step (core.engine.start_path) --

# The webhook channel's stored settings come along (no round trip of their own): the
# finish path builds its outbox rows from them without reading them again
# (core.engine.finish_path.WebhookRow; FINISH_UNREAD checks they are still stored).
_WEBHOOK_ROW = "  LEFT JOIN channel_configurations AS hooks ON hooks.channel = 'webhook'"

NEXT_ID_AND_HEAD = (
    "SELECT "
    + PG_NEXT_ID
    + ", head.seq, head.digest, hooks.enabled, hooks.settings FROM workflows"
    + PG_HEAD
    + _WEBHOOK_ROW
    + " WHERE workflows.id = %(workflow_id)s"
)

START = (
    """
WITH started AS (
    INSERT INTO step_runs (id, workflow_id, step_index, step_name, step_type, status,
                           attempt, started_at, executed_by, idempotency_key)
    VALUES (%(run_id)s, %(workflow_id)s, %(index)s, %(name)s, %(type)s, 'running', 1,
            %(now)s, %(runner_id)s, %(key)s)
    RETURNING id
), moved AS (
    UPDATE workflows SET current_step_run_id = %(run_id)s, updated_at = %(now)s
     WHERE id = %(workflow_id)s
    RETURNING id
), logged AS (
    INSERT INTO workflow_events (workflow_id, event_type, actor, step_name, before, after,
                                 data, created_at, trail_chain, trail_seq, trail_prev, trail_hash)
    SELECT %(workflow_id)s, 'step.started', %(runner_id)s, %(name)s, NULL, NULL,
           %(data)s, %(now)s, %(chain)s, %(seq)s, %(prev)s, %(hash)s FROM started, moved
)
SELECT started.id, """
    + PG_NEXT_ID
    + """ AS id_ahead FROM started, moved
"""
)


# -- a claimed workflow's first plain step, started unlocked (core.engine.start_path) --

# What the start needs, read without a lock or a BEGIN (sent with the pipeline's Sync:
# one round trip): the row's version (``xmin``: any UPDATE of the row makes a new
# one), where it stands, what its templates read, the definition when it is not
# cached (``%(definition)s``), a run id drawn only when the start may follow, the
# trail's head and the webhook channel's stored settings.
READ_FOR_START = (
    """SELECT workflows.xmin::text, workflows.status, workflows.lease_owner, workflows.current_step,
       workflows.current_step_run_id, workflows.name, workflows.input_data, workflows.context,
       CASE WHEN %(definition)s THEN workflows.definition END,
       CASE WHEN workflows.current_step_run_id IS NULL AND workflows.status = 'running'
                 AND workflows.lease_owner = %(runner_id)s THEN """
    + PG_NEXT_ID
    + """ END,
       head.seq, head.digest, hooks.enabled, hooks.settings FROM workflows"""
    + PG_HEAD
    + _WEBHOOK_ROW
    + " WHERE workflows.id = %(workflow_id)s"
)
# Sent in one pipeline before START_UNREAD: START_UNREAD's snapshot is then taken
# once the lock is granted, so its guard sees every trail entry committed before.
LOCK_BY_ID = "SELECT 1 FROM workflows WHERE workflows.id = %(workflow_id)s FOR UPDATE OF workflows"
# START after READ_FOR_START: the first CTE checks, under the lock, that the row is
# the version read (``xmin``) and still as the start needs it (this runner's lease,
# running, at ``index`` with no run), and that no trail entry came after the head
# read; each later CTE follows it. All or nothing: when the first matches nothing,
# no row comes back, nothing is written, and the caller takes the locked path.
START_UNREAD = (
    """
WITH moved AS (
    UPDATE workflows SET current_step_run_id = %(run_id)s, updated_at = %(now)s
     WHERE workflows.id = %(workflow_id)s AND workflows.xmin::text = %(xmin)s
       AND workflows.lease_owner = %(runner_id)s AND workflows.status = 'running'
       AND workflows.current_step = %(index)s AND workflows.current_step_run_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM workflow_events
                        WHERE trail_chain = %(workflow_id)s AND trail_seq > %(head_seq)s)
       AND NOT EXISTS (SELECT 1 FROM approval_responses
                        WHERE trail_chain = %(workflow_id)s AND trail_seq > %(head_seq)s)
    RETURNING id
), started AS (
    INSERT INTO step_runs (id, workflow_id, step_index, step_name, step_type, status,
                           attempt, started_at, executed_by, idempotency_key)
    SELECT %(run_id)s, %(workflow_id)s, %(index)s, %(name)s, %(type)s, 'running', 1,
           %(now)s, %(runner_id)s, %(key)s FROM moved
    RETURNING id
), logged AS (
    INSERT INTO workflow_events (workflow_id, event_type, actor, step_name, before, after,
                                 data, created_at, trail_chain, trail_seq, trail_prev, trail_hash)
    SELECT %(workflow_id)s, 'step.started', %(runner_id)s, %(name)s, NULL, NULL,
           %(data)s, %(now)s, %(chain)s, %(seq)s, %(prev)s, %(hash)s FROM started
)
SELECT started.id, """
    + PG_NEXT_ID
    + """ AS id_ahead FROM started
"""
)

# -- a workflow's finish (core.engine.finish_path) --

LOCK_HEAD_AND_WEBHOOKS = (
    "SELECT head.seq, head.digest, hooks.enabled, hooks.settings FROM workflows"
    + PG_HEAD
    + _WEBHOOK_ROW
    + PG_LOCK_WHERE
)

# What every finish statement writes once its first CTE (``moved``) matched.
_FINISH_REST = (
    """    RETURNING id
"""
    + PG_RUN_COMPLETED
    + """), logged AS (
    INSERT INTO workflow_events (workflow_id, event_type, actor, step_name, before, after,
                                 data, created_at, trail_chain, trail_seq, trail_prev, trail_hash)
    SELECT %(workflow_id)s, 'step.completed', %(runner_id)s, %(name)s, %(before)s, %(after)s,
           %(completed_data)s, %(now)s, %(chain)s, %(seq_done)s, %(prev_done)s, %(hash_done)s FROM done
    UNION ALL
    SELECT %(workflow_id)s, 'workflow.status_changed', %(runner_id)s, NULL, %(status_before)s,
           %(status_after)s, %(status_data)s, %(now)s, %(chain)s, %(seq_status)s, %(prev_status)s,
           %(hash_status)s FROM done
), queued AS (
    INSERT INTO notifications (id, approval_id, workflow_id, kind, channel, recipient, status,
                               attempts, next_attempt_at, payload, external_ref, created_at, updated_at)
    SELECT note.id, NULL, %(workflow_id)s, note.kind, note.channel, note.recipient, 'pending',
           0, %(now)s, note.payload, '{}'::jsonb, %(now)s, %(now)s
      FROM jsonb_to_recordset(%(notes)s)
           AS note(id text, kind text, channel text, recipient text, payload jsonb), done
)
SELECT id FROM done
"""
)


# The outcome, the workflow's end, both events and the outbox rows, all or nothing:
# the first CTE checks everything (PG_STEP_GUARD and ``extra``), each later one follows it.
def _finish(extra: str = "") -> str:
    return (
        """
WITH moved AS (
    UPDATE workflows
       SET status = 'completed', current_step = %(next_index)s, current_step_run_id = NULL,
           updated_at = %(now)s, finished_at = %(now)s, runnable_at = NULL,
           lease_owner = NULL, lease_expires_at = NULL, engine_errors = 0"""
        + PG_STEP_GUARD
        + extra
        + _FINISH_REST
    )


# After LOCK_HEAD_AND_WEBHOOKS (the head and the webhook settings read under the lock).
FINISH = _finish()
# When the head and the webhook settings are known (``Ahead``, ``WebhookRow``): sent with
# LOCK_ONLY in one pipeline, as STEP is; it also checks that the webhook channel's
# stored (enabled, settings) are still those the outbox rows were built from (JSON
# null: no row), or writes nothing.
FINISH_UNREAD = _finish(
    """       AND COALESCE((SELECT jsonb_build_array(enabled, settings) FROM channel_configurations
                      WHERE channel = 'webhook'), 'null'::jsonb) = %(hooks_seen)s
"""
)
FINISH_JSON = (
    "output",
    "before",
    "after",
    "completed_data",
    "status_before",
    "status_after",
    "status_data",
    "notes",
)


# -- the batch claim (core.engine.claim_queue) --

# The claim as one UPDATE sent with its (not durable) COMMIT in one round trip: it
# writes all or nothing by itself. The rows are those SQLite's statement
# (``claim_queue._claim_statement``) picks, in the same order. Each claimed row also
# comes back with what READ_FOR_START reads, in its columns' order (the row's new
# version, its position, what templates read, and where the start may follow, the
# definition and a run id; the trail's head and the webhook settings as this
# statement's snapshot saw them): the start of a plain step then needs no read of its
# own (core.engine.start_path.start_unread checks all of it under the lock).
CLAIM = (
    """
WITH claimed AS (
    UPDATE workflows
       SET lease_owner = %(runner_id)s, lease_expires_at = %(expires)s, updated_at = %(now)s
     WHERE id IN (SELECT id FROM workflows
                   WHERE status = 'running' AND runnable_at <= %(now)s
                     AND (lease_owner IS NULL OR lease_expires_at < %(now)s)
                   ORDER BY runnable_at LIMIT %(limit)s
                     FOR UPDATE SKIP LOCKED)
    RETURNING id, runnable_at, xmin::text AS version, status, lease_owner, current_step,
              current_step_run_id, name, input_data, context, definition
)
SELECT claimed.id, claimed.runnable_at, claimed.version, claimed.status, claimed.lease_owner,
       claimed.current_step, claimed.current_step_run_id, claimed.name, claimed.input_data,
       claimed.context,
       CASE WHEN claimed.current_step_run_id IS NULL THEN claimed.definition END,
       CASE WHEN claimed.current_step_run_id IS NULL THEN """
    + PG_NEXT_ID
    + """ END,
       head.seq, head.digest, hooks.enabled, hooks.settings
  FROM claimed"""
    + PG_HEAD.replace("%(workflow_id)s", "claimed.id")
    + _WEBHOOK_ROW
    + "\n"
)
