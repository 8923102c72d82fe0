"""Override values (``--set section.field=value``, ``SIEVE_TRAIN_*``) read by the type of the
field they set.

Why not YAML: YAML 1.1 reads ``no``, ``off`` and ``yes`` as booleans, ``null`` as none and
``0x10`` as 16, so ``--set optim.mixed_precision=no`` handed a string field ``False``. Here the
field decides:

- a string field (and a path) gets the text as written: ``no``, ``on``, ``null``, ``1e-3``;
- a ``Literal`` field one of its values, spelled as written; anything else is an error listing
  them;
- ``bool``: ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0`` (any case);
- ``int``: a decimal integer, or ``0x``/``0o``/``0b``; ``float``: any Python float (``1e-3``,
  ``inf``);
- an optional field: ``null`` is none, anything else is read as the other type;
- a union: the first of its types that reads the text, a string type last;
- a list, tuple or set: ``[a, b]`` (a YAML flow sequence) or ``a,b``, each item read by the item
  type; a mapping or a nested section: ``{key: value}``, each value read by its field's type;
- a field of any type (``dict[str, Any]``'s values): JSON (``64``, ``true``, ``null``,
  ``[1, 2]``), else a flow list or mapping whose items are read so, else the text.

A value that fits none of its field's types is a :class:`NotAccepted` naming what would be.
A key that names no field is left as text for the config's own validation to refuse by name.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

import yaml
from pydantic import BaseModel

__all__ = ["NotAccepted", "field_type", "read_value"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NULL = "null"
#: What :func:`field_type` returns for a key that names no field.
UNKNOWN: Any = object()


class NotAccepted(ValueError):
    """A value that fits none of its field's types; ``accepted`` says what would."""

    def __init__(self, value: object, accepted: str) -> None:
        super().__init__(f"{value!r} is not {accepted}")
        self.value = value
        self.accepted = accepted


def field_type(model: type[BaseModel], path: Sequence[str]) -> Any:
    """The annotation of the field ``path`` names inside ``model``; :data:`UNKNOWN` if none.

    Descends through nested sections and into the values of mappings (``model.architecture.x``
    is a value of ``dict[str, Any]``).
    """
    annotation: Any = model
    for part in path:
        annotation = _descend(annotation, part)
        if annotation is UNKNOWN:
            return UNKNOWN
    return annotation


def _descend(annotation: Any, part: str) -> Any:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(part)
            return UNKNOWN if field is None else field.annotation
        origin = typing.get_origin(member)
        if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
            args = typing.get_args(member)
            return args[1] if len(args) == 2 else Any
        if member is dict:
            return Any
    return UNKNOWN


def read_value(text: str, annotation: Any) -> Any:
    """``text`` read as a value of ``annotation``; raises :class:`NotAccepted`."""
    return _convert(text, annotation)


def _convert(node: Any, annotation: Any) -> Any:
    """``node`` (text, or a list or mapping of YAML's untyped reading) as ``annotation``."""
    if annotation is Any or annotation is object:
        return _any(node)
    members = _members(annotation)
    if len(members) > 1 or type(None) in members:
        return _union(node, members)
    return _single(node, annotation)


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _union(node: Any, members: tuple[Any, ...]) -> Any:
    if type(None) in members and node == _NULL:
        return None
    # Text fits any string type: try the others first, so "3" is 3 for ``int | str``.
    ordered = sorted(
        (m for m in members if m is not type(None)), key=lambda m: m is str or _is_path(m)
    )
    # Plain text goes to a list or mapping type only when no other type reads it: for
    # ``str | list[str]``, ``a,b`` is the string, ``[a, b]`` the list.
    plain = isinstance(node, str) and not node.lstrip().startswith(("[", "{"))
    if plain:
        ordered.sort(key=_is_structured)
    accepted: list[str] = []
    for member in ordered:
        try:
            return _convert(node, member)
        except NotAccepted as refused:
            accepted.append(refused.accepted)
    if type(None) in members:
        accepted.append(_NULL)
    raise NotAccepted(node, " or ".join(accepted))


def _single(node: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return _literal(node, typing.get_args(annotation))
    if annotation is type(None):
        if node == _NULL:
            return None
        raise NotAccepted(node, _NULL)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _section(node, annotation)
    if origin is not None and isinstance(origin, type):
        if issubclass(origin, Mapping):
            args = typing.get_args(annotation)
            return _mapping(node, args[1] if len(args) == 2 else Any)
        if issubclass(origin, (list, tuple, set, frozenset)):
            return _sequence(node, origin, typing.get_args(annotation))
    if annotation in (list, tuple, set, frozenset):
        return _sequence(node, annotation, ())
    if annotation is dict:
        return _mapping(node, Any)
    if not isinstance(node, str):
        raise NotAccepted(node, _describe(annotation))
    if annotation is bool:
        return _bool(node)
    if annotation is int:
        return _int(node)
    if annotation is float:
        return _float(node)
    if annotation is str:
        return node
    if _is_path(annotation):
        return annotation(node)
    return _any(node)  # a type we do not know: as written, for the model to validate


def _literal(node: Any, values: tuple[Any, ...]) -> Any:
    for value in values:
        if isinstance(node, str) and node == (
            str(value).lower() if isinstance(value, bool) else str(value)
        ):
            return value
    raise NotAccepted(node, "one of " + ", ".join(repr(value) for value in values))


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise NotAccepted(text, _describe(bool))


def _int(text: str) -> int:
    for base in (10, 0):
        try:
            return int(text.strip(), base)
        except ValueError:
            continue
    raise NotAccepted(text, _describe(int))


def _float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise NotAccepted(text, _describe(float)) from None


def _any(node: Any) -> Any:
    if isinstance(node, list):
        return [_any(item) for item in node]
    if isinstance(node, dict):
        return {key: _any(value) for key, value in node.items()}
    try:
        return json.loads(node)
    except ValueError:
        pass
    if node.lstrip().startswith(("[", "{")):
        structure = _structure(node)
        if not isinstance(structure, str):
            return _any(structure)
    return node


def _structure(node: Any) -> Any:
    """Text as YAML's untyped reading (lists, mappings, text), nothing else inferred."""
    if not isinstance(node, str):
        return node
    try:
        return yaml.load(node, Loader=yaml.BaseLoader)  # untyped: text, lists, mappings
    except yaml.YAMLError:
        return node


def _sequence(node: Any, origin: type, args: tuple[Any, ...]) -> Any:
    items = _structure(node)
    if isinstance(items, str):  # a,b,c
        items = [part.strip() for part in items.split(",")] if items.strip() else []
    if not isinstance(items, list):
        raise NotAccepted(node, f"a list ([a, b] or a,b) of {_item_name(origin, args)}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise NotAccepted(node, f"{len(args)} items ({_item_name(origin, args)})")
        return tuple(_convert(item, arg) for item, arg in zip(items, args, strict=True))
    item_type = args[0] if args else Any
    converted = [_convert(item, item_type) for item in items]
    return origin(converted) if origin is not list else converted


def _mapping(node: Any, value_type: Any) -> dict[str, Any]:
    mapping = _structure(node)
    if not isinstance(mapping, dict):
        raise NotAccepted(node, "a mapping ({key: value, ...})")
    return {key: _convert(value, value_type) for key, value in mapping.items()}


def _section(node: Any, model: type[BaseModel]) -> dict[str, Any]:
    mapping = _structure(node)
    if not isinstance(mapping, dict):
        raise NotAccepted(node, f"a mapping of {model.__name__}'s fields ({{field: value, ...}})")
    result = {}
    for key, value in mapping.items():
        annotation = field_type(model, [key])
        result[key] = value if annotation is UNKNOWN else _convert(value, annotation)
    return result


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and (
        issubclass(origin, (list, tuple, set, frozenset, Mapping, dict, BaseModel))
    )


def _is_path(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, PurePath)


def _item_name(origin: type, args: tuple[Any, ...]) -> str:
    names = [_describe(arg) for arg in args if arg is not Ellipsis]
    return ", ".join(names) or "values"


def _describe(annotation: Any) -> str:
    if annotation is bool:
        return "true or false (also yes/no, on/off, 1/0)"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "text"
    if _is_path(annotation):
        return "a path"
    return getattr(annotation, "__name__", str(annotation))
