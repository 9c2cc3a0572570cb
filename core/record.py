"""Typed records of plain data: dataclasses that write themselves to JSON-ready dictionaries,
read themselves back, and state their own JSON Schema — all three from the one set of type hints.

The types a field may have: ``str``, ``int``, ``float``, ``bool``, ``Any``, a vocabulary
``Annotated[str, OneOf(words)]``, another ``Record``, ``list[T]``, ``tuple[T, ...]`` (a list in
JSON), ``dict[str, T]`` (its keys may be a vocabulary) and ``T | None``; and ``Measure``, a float
that is NaN where nothing was measured (or the measurement is not finite), which JSON, having no
NaN, writes as null. A field without a default is required in the schema; one with a default
may be absent (an older writer's document) and reads back as its default.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, Field, dataclass, fields
from typing import Annotated, Any, TypeVar, get_args, get_origin

NOT_FINITE_IS_NULL = "a float; null in JSON where it is NaN or infinite (nothing measured)"
Measure = Annotated[float, NOT_FINITE_IS_NULL]
R = TypeVar("R", bound="Record")


def finite(value: float | None) -> float | None:
    """``value``, or None where it measured nothing: None, NaN or infinite (JSON's null)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class OneOf:
    """The words a ``str`` field may hold, for ``Annotated[str, OneOf(...)]``: an enum in the
    JSON Schema, a plain string to the type checker."""

    words: tuple[str, ...]


def words(vocabulary: Any) -> tuple[str, ...]:
    """The words of an ``Annotated[str, OneOf(...)]`` vocabulary."""
    return vocabulary.__metadata__[0].words


@dataclass
class Record:
    """A dataclass of plain data; subclasses are dataclasses whose fields have the types above."""

    def to_dict(self) -> dict:
        """The record as JSON-ready data: records and tuples become dicts and lists, a Measure
        that is not finite becomes None."""
        hints = field_types(type(self))
        return {item.name: _dump(getattr(self, item.name), hints[item.name]) for item in fields(self)}

    @classmethod
    def from_dict(cls: type[R], data: dict) -> R:
        """The record from data as ``to_dict`` writes it (a Measure's null reads back as NaN);
        the data are expected to follow ``json_schema()``."""
        hints = field_types(cls)
        return cls(**{item.name: _load(data[item.name], hints[item.name]) for item in fields(cls)
                      if item.init and item.name in data})

    @classmethod
    def json_schema(cls, title: str | None = None) -> dict:
        """The JSON Schema (draft 2020-12) of ``to_dict``'s output: every field without a default
        required, no other field allowed, each record type described once under ``$defs`` by its
        docstring."""
        definitions: dict[str, dict] = {}
        _schema(cls, definitions)
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title or cls.__name__,
                **definitions.pop(cls.__name__), "$defs": definitions}


FIELD_TYPES: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of a record's fields (Annotated kept), resolved once per class."""
    if cls not in FIELD_TYPES:
        FIELD_TYPES[cls] = typing.get_type_hints(cls, include_extras=True)
    return FIELD_TYPES[cls]


def _optional(hint: Any) -> Any | None:
    """``T`` for ``T | None``, else None."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        others = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(others) == 1 and len(others) < len(get_args(hint)):
            return others[0]
    return None


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Record)


def _dump(value: Any, hint: Any) -> Any:
    inner = _optional(hint)
    if value is None:
        return None
    if inner is not None:
        return _dump(value, inner)
    if hint is Measure:
        return finite(value)
    if _is_record(hint):
        return value.to_dict()
    origin, args = get_origin(hint), get_args(hint)
    if origin in (list, tuple):
        return [_dump(item, args[0]) for item in value]
    if origin is dict:
        return {key: _dump(item, args[1]) for key, item in value.items()}
    return value


def _load(value: Any, hint: Any) -> Any:
    inner = _optional(hint)
    if inner is not None:
        return None if value is None else _load(value, inner)
    if hint is Measure:
        return math.nan if value is None else float(value)
    if _is_record(hint):
        return hint.from_dict(value)
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return [_load(item, args[0]) for item in value]
    if origin is tuple:
        return tuple(_load(item, args[0]) for item in value)
    if origin is dict:
        return {key: _load(item, args[1]) for key, item in value.items()}
    if hint is float and isinstance(value, int):
        return float(value)
    return value


SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema(hint: Any, definitions: dict[str, dict]) -> dict:
    """The JSON Schema of one type hint; record types go to ``definitions`` once, by name."""
    inner = _optional(hint)
    if inner is not None:
        return _nullable(_schema(inner, definitions))
    if hint is Measure:
        return {"type": ["number", "null"], "description": NOT_FINITE_IS_NULL}
    if hint is Any:
        return {}
    if _is_record(hint):
        if hint.__name__ not in definitions:
            definitions[hint.__name__] = {}  # a placeholder while its fields are described
            hints = field_types(hint)
            definitions[hint.__name__] = {
                "type": "object", "description": " ".join((hint.__doc__ or "").split()),
                "properties": {item.name: _schema(hints[item.name], definitions) for item in fields(hint)},
                "required": [item.name for item in fields(hint) if _required(item)], "additionalProperties": False}
        return {"$ref": f"#/$defs/{hint.__name__}"}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated and isinstance(hint.__metadata__[0], OneOf):
        return {"enum": list(hint.__metadata__[0].words)}
    if origin in (list, tuple):
        return {"type": "array", "items": _schema(args[0], definitions)}
    if origin is dict:
        schema = {"type": "object", "additionalProperties": _schema(args[1], definitions)}
        if get_origin(args[0]) is Annotated:
            schema["propertyNames"] = _schema(args[0], definitions)
        return schema
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(arg, definitions) for arg in args]}
    return {"type": SCALARS[hint]}


def _required(item: Field) -> bool:
    """A field without a default must be there; one with a default may be left out (it reads
    back as its default)."""
    return item.default is MISSING and item.default_factory is MISSING


def _nullable(schema: dict) -> dict:
    """``schema`` or null."""
    if "$ref" in schema or "enum" in schema or "anyOf" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema.get("type")
    if kinds is None:
        return schema
    return {**schema, "type": [*(kinds if isinstance(kinds, list) else [kinds]), "null"]}
