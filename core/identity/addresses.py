"""What a person's address and a group's name may be: the one check every place one enters.

An account's address is a plain, ASCII email address, so that no address can pass
for another in a list, a message or the audit trail: ``admin@example.com`` followed by
a zero-width space, one whose text a right-to-left override reverses, or one with a
Cyrillic ``а`` in place of the Latin ``a`` looks exactly like the platform admin's.
Refused, each naming the character (its code point and Unicode name) and why:

- control, invisible (format) and direction characters, spaces and other separators;
- anything outside ASCII (an internationalised domain is written in its ``xn--``
  form; a local part outside ASCII has no such form and is refused);
- quotes, commas, semicolons and angle brackets (one bare address, not a list or a
  display name), and any other character beyond letters, digits and ``. _ + -``
  before the ``@``; a domain of letters, digits and hyphens in dot-separated labels;
- the names core keeps for system actors (``agent:``, ``system:``, ``cli:``) and any
  colon before the ``@``; more than one ``@``; dots at either end of the name or two
  in a row; RFC 5321's lengths (64 before the ``@``, 254 in all, 63 a label).

ASCII-only is the rule against look-alikes (no confusables table): two addresses that
differ only by letters that look alike in another script cannot both exist, because
neither may leave ASCII. Look-alikes within ASCII (``rn`` and ``m``, ``0`` and ``o``)
are distinct plain characters and are not refused.

A group's name (``users add --group``, an approver that is not an address) is
lowercase ASCII letters, digits and ``. _ -``, starting with a letter or a digit, and
never holds an ``@`` (a name with one is taken for a person everywhere).

The checks (``address_problem``, ``group_problem``, ``principal_problem``,
``actor_problem``) import nothing but the standard library and the error tree, so a
definition's validation and the command line's ``--as`` use them as they are.
"""

from __future__ import annotations

import unicodedata

from core.base.errors import Invalid, quoted

__all__ = [
    "InvalidAddress",
    "InvalidGroup",
    "SYSTEM_PREFIXES",
    "actor_problem",
    "address_problem",
    "check_address",
    "check_group",
    "group_problem",
    "principal_problem",
]

SYSTEM_PREFIXES = ("system:", "cli:", "agent:")
# Trimmed from either end as typed (a pasted address's line break); anything else is refused.
_ENDS = " \t\r\n\f\v"
_LETTERS_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_LOCAL = _LETTERS_DIGITS | frozenset("._+-")
_DOMAIN = _LETTERS_DIGITS | frozenset(".-")
_GROUP = _LETTERS_DIGITS | frozenset("._-")
MAX_LOCAL, MAX_ADDRESS, MAX_LABEL, MAX_GROUP = 64, 254, 63, 100
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_PUNCTUATION = {
    '"': "a quotation mark",
    "'": "a quotation mark",
    "`": "a quotation mark",
    ",": "a comma: give one address, not a list",
    ";": "a semicolon: give one address, not a list",
    "<": "an angle bracket: give the bare address, not a name with it",
    ">": "an angle bracket: give the bare address, not a name with it",
    "(": "a parenthesis: give the bare address, without a comment",
    ")": "a parenthesis: give the bare address, without a comment",
}
ADDRESS_RULE = "a plain address is letters, digits and . _ + - before the @, and a domain"
GROUP_RULE = "a group's name is letters, digits and . _ -"


class InvalidAddress(Invalid):
    """That is not a person's plain email address."""


class InvalidGroup(Invalid):
    """That is not a plain group name."""


def _code(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _character_problem(char: str, rule: str) -> str:
    """Why ``char`` has no place in an address or a name, naming it."""
    category = unicodedata.category(char)
    if char in _BIDI:
        return f"{_code(char)}, a direction control that changes how the text around it reads"
    if category == "Cc":
        return f"{_code(char)}, a control character"
    if category in ("Cf", "Cn", "Co", "Cs"):
        return f"{_code(char)}, an invisible character"
    if category.startswith("Z"):
        return f"{_code(char)}, a space or separator"
    if not char.isascii():
        return (
            f"{_code(char)}, which is not ASCII: addresses and names are ASCII so that none "
            "can pass for another (an internationalised domain is written in its xn-- form)"
        )
    if char in _PUNCTUATION:
        return f"{quoted(char)}, {_PUNCTUATION[char]}"
    return f"{quoted(char)}; {rule}"


def _first_stranger(text: str, allowed: frozenset[str]) -> str | None:
    return next((c for c in text if c not in allowed), None)


def _domain_problem(shown: str, domain: str) -> str | None:
    if not domain:
        return f"{shown} has no domain after the @"
    for label in domain.split("."):
        if not label:
            return f"{shown} has an empty part in its domain (a dot at either end, or two in a row)"
        if label.startswith("-") or label.endswith("-"):
            return f"{shown} has a domain part {quoted(label)} that starts or ends with a hyphen"
        if len(label) > MAX_LABEL:
            return f"{shown} has a domain part longer than {MAX_LABEL} characters"
    return None


def address_problem(address: str | None) -> str | None:
    """Why ``address`` cannot be a person's account address (None: it can); see the module."""
    typed = (address or "").strip(_ENDS)
    name = typed.lower()
    if not name:
        return "an email address is needed"
    shown = quoted(name)
    if "@" not in name:
        return f"{shown} is not an email address"
    if name.startswith(SYSTEM_PREFIXES):
        reserved = next(p for p in SYSTEM_PREFIXES if name.startswith(p))
        return f"{shown} starts with {quoted(reserved)}, kept for system actors; use a plain address"
    local, _, domain = typed.partition("@")
    if ":" in local:
        return f"{shown} has a colon before the @; use a plain address"
    # Every character is looked at as typed (a Kelvin sign lowercases to a Latin k).
    for part, allowed in ((local, _LOCAL), (domain, _DOMAIN | {"@"})):
        stranger = _first_stranger(part, allowed)
        if stranger is not None:
            rule = ADDRESS_RULE + " of letters, digits, hyphens and dots"
            return f"{shown} contains {_character_problem(stranger, rule)}; use a plain address"
    if "@" in domain:
        return f"{shown} has more than one @; give one plain address"
    if not local:
        return f"{shown} has nothing before the @"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return f"{shown} has a dot at either end of the part before the @, or two in a row"
    if len(local) > MAX_LOCAL:
        return f"{shown} has more than {MAX_LOCAL} characters before the @"
    if len(name) > MAX_ADDRESS:
        return f"{shown} is longer than {MAX_ADDRESS} characters"
    return _domain_problem(shown, domain.lower())


def check_address(address: str, field: str = "email") -> str:
    """``address`` normalised (trimmed, lowercase), or ``InvalidAddress`` naming ``field``."""
    problem = address_problem(address)
    if problem is not None:
        raise InvalidAddress(f"{field}: {problem}.")
    return address.strip(_ENDS).lower()


def group_problem(name: str | None) -> str | None:
    """Why ``name`` cannot be a group's name (None: it can); see the module."""
    typed = (name or "").strip(_ENDS)
    if not typed:
        return "a group name is needed"
    shown = quoted(typed.lower())
    if "@" in typed:
        return f"{shown} holds an @, which makes it a person's address, not a group's name"
    stranger = _first_stranger(typed, _GROUP)
    if stranger is not None:
        return f"{shown} contains {_character_problem(stranger, GROUP_RULE)}; {GROUP_RULE}"
    if typed[0] in "._-":
        return f"{shown} starts with {quoted(typed[0])}; a group's name starts with a letter or a digit"
    if len(typed) > MAX_GROUP:
        return f"{shown} is longer than {MAX_GROUP} characters"
    return None


def check_group(name: str, field: str = "group") -> str:
    """``name`` normalised (trimmed, lowercase), or ``InvalidGroup`` naming ``field``."""
    problem = group_problem(name)
    if problem is not None:
        raise InvalidGroup(f"{field}: {problem}.")
    return name.strip(_ENDS).lower()


def principal_problem(value: str | None) -> str | None:
    """An approver as a definition names one: a person's address (with an ``@``) or a
    group's name; why it cannot be one (None: it can)."""
    return address_problem(value) if "@" in (value or "") else group_problem(value)


def actor_problem(actor: str | None) -> str | None:
    """Why ``actor`` cannot be who a command acts as (the CLI's ``--as``): a person's
    plain address, or a name without an ``@`` (a system actor's, ``cli:<login>``) that
    holds no control, invisible or direction character and no space."""
    name = (actor or "").strip(_ENDS)
    if "@" in name:
        return address_problem(name)
    if not name:
        return "a name or an address is needed"
    stranger = next((c for c in name if unicodedata.category(c)[0] in "CZ" or c in _BIDI), None)
    if stranger is not None:
        return f"{quoted(name)} contains {_character_problem(stranger, '')}"
    return None
