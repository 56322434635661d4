"""The workflow language, pure pydantic: workflows and steps (``workflow``), approval
forms (``approval_schema``, RE2-safe patterns in ``safe_schema``), agent specs
(``agents``), gate expressions (``gates``) and the approved call: its digest,
schema and edits (``calls``). No database.
"""

__all__ = ["agents", "approval_schema", "calls", "gates", "safe_schema", "workflow"]
