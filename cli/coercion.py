"""Options checked without pydantic where the check is plain: text, whole numbers.

typer (0.29 and later) checks every option and argument it is given, and every
default that is not None, through a pydantic ``TypeAdapter``: the first check
imports pydantic, about 0.05 s of CPU, so a listing with ``--as`` or ``--limit``
(or a default of either) paid it. A text value is already text and a run of
ASCII digits is ``int()`` of itself, so ``plain_checks`` gives such parameters
these answers directly; any other value (``" 5"``, ``"1_000"``, ``"abc"``) and
any other type goes to typer's own check, so what is accepted and every error
message stay typer's. Bool flags never reach a check (typer takes a bool as it
is), which ``cli.main``'s ``--help`` default relies on.

This reaches into typer's parameters (``_runtime_param``, the slot typer fills
lazily with its check); if a typer release renames it, ``plain_checks`` leaves
the command alone and tests/acceptance/core/test_cli_startup.py reports pydantic
in a listing again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from typer import core as typer_core
from typer._coercion import RuntimeParam, build_runtime_param

__all__ = ["plain_checks"]

_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class _PlainCheck(RuntimeParam):
    """``str`` and ``int`` values answered directly; anything else checked by typer."""

    fallback: Any  # the parameter's TypeDescriptor: typer's own check is built from it if needed

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if self.annotation is str and isinstance(value, str):
            return value
        if self.annotation is int:
            if type(value) is int:
                return value
            if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
                return int(value)
        return build_runtime_param(self.fallback)._coerce_value(value, param=param, ctx=ctx)


def _is_plain(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if (
        descriptor is None
        or descriptor.annotation not in (str, int)
        or descriptor.file_annotation is not None
    ):
        return False
    info = descriptor.parameter_info
    return info.parser is None and info.min is None and info.max is None and not info.clamp


def plain_checks(command: Any) -> None:
    """Give every plain text and whole-number parameter of ``command`` and the commands
    below it the direct check (a click command tree as typer builds it)."""
    for param in command.params:
        if (
            isinstance(param, typer_core._TyperParameter)
            and getattr(param, "_runtime_param", "missing") is None
            and _is_plain(param)
        ):
            descriptor = param.type_descriptor
            param._runtime_param = _PlainCheck(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                fallback=descriptor,
            )
    for sub in getattr(command, "commands", {}).values():
        plain_checks(sub)
