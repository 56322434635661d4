"""Every error Countersign raises belongs to one of six kinds, and every
interface maps each kind: no error class falls to a default status."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from core.base import errors
from core.base.errors import KINDS, CountersignError


def _every_module() -> None:
    for root in ("core", "cli", "gateway", "components"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            if ".migrations" not in info.name and not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def _subclasses(cls: type[CountersignError]) -> list[type[CountersignError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


_every_module()
ERRORS = sorted({c for c in _subclasses(CountersignError) if c not in KINDS}, key=lambda c: c.__name__)


def test_the_base_has_only_the_six_kinds_below_it() -> None:
    assert {c for c in CountersignError.__subclasses__()} == set(KINDS)
    assert len(ERRORS) > 40  # the walk found the tree, not an empty list


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_each_error_has_a_kind_and_a_message(cls: type[CountersignError]) -> None:
    error = cls.__new__(cls)
    assert errors.kind_of(error) is not None
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring (its default message)"


def test_every_interface_maps_every_kind() -> None:
    from cli.main import EXIT_CODE_BY_KIND
    from components.feedback import LEVEL_BY_KIND
    from gateway.errors import STATUS_BY_KIND

    for mapping in (STATUS_BY_KIND, EXIT_CODE_BY_KIND, LEVEL_BY_KIND):
        assert set(mapping) == set(KINDS)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_rest_gives_each_error_its_kinds_status(cls: type[CountersignError]) -> None:
    from cli.main import exit_code_for
    from gateway.errors import status_for

    error = cls.__new__(cls)
    assert status_for(error) in (401, 403, 404, 409, 410, 422, 400, 503)
    assert status_for(error) != 400 or isinstance(error, errors.LinkError)
    assert exit_code_for(error) != 1
