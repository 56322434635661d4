"""Supervised chat sessions: sessions and their messages, who may see them
(``access``), the model answering (``agent``), the agent run with held tools
(``runner``).
"""

__all__ = ["access", "agent", "messages", "rehearsal", "runner", "sessions"]
