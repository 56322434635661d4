"""The schema is defined once, as Core tables (core.store.schema); the mapped
classes (core.store.tables) map those tables and only annotate their columns for
typing. These checks keep the annotations honest: every class names exactly its
table's columns, optional exactly where the column is nullable."""

from __future__ import annotations

import typing

import pytest

from core.store import schema, tables

MAPPED = sorted(
    (cls for cls in vars(tables).values() if isinstance(cls, type) and issubclass(cls, tables.Base)),
    key=lambda cls: cls.__name__,
)


def test_every_table_has_its_mapped_class_and_one_metadata() -> None:
    mapped = {cls.__table__.name for cls in MAPPED if cls is not tables.Base}
    assert mapped == set(schema.metadata.tables)
    assert tables.Base.metadata is schema.metadata


@pytest.mark.parametrize("cls", [c for c in MAPPED if c is not tables.Base], ids=lambda c: c.__name__)
def test_the_annotations_name_the_columns_nullable_where_the_column_is(cls: type) -> None:
    hints = typing.get_type_hints(cls)
    annotated = {name: hint for name, hint in hints.items() if typing.get_origin(hint) is tables.Mapped}
    columns = {column.name: column for column in cls.__table__.columns}
    relationships = set(cls.__mapper__.relationships.keys())
    assert set(annotated) - relationships == set(columns)
    for name, column in columns.items():
        (inner,) = typing.get_args(annotated[name])
        optional = type(None) in typing.get_args(inner)
        assert optional == column.nullable, (
            f"{cls.__name__}.{name}: Optional {optional}, nullable {column.nullable}"
        )
