"""The demo: its four scenarios, users and templates (``scenarios``) and its
stand-in tools (``tools``, registered by ``core.runtime.load_tools``).
"""

__all__ = ["scenarios", "tools"]
