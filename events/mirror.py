"""TypedDict mirrors of the pydantic models: the same fields and constraints, validated into
plain dicts.

Validating into models and dumping them back (`exclude_none`) costs about three times as much
as validating straight into dicts, and the append path wants dicts. A mirror is derived from
its model, never written by hand, so the two cannot drift apart. It accepts a subset of what
the model accepts: an optional field may be absent but not null (the model takes a null and
drops it), and a model with a model-level validator has no mirror. Whatever a mirror refuses
goes to the model, which accepts it or explains why not, so a mirror decides speed only.
"""

from __future__ import annotations

import contextlib
import types
from typing import Annotated, Any, NotRequired, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict

# pydantic needs typing_extensions' TypedDict before Python 3.12
from typing_extensions import TypedDict

_CONFIG = ConfigDict(extra="forbid", strict=True)
_mirrors: dict[type[BaseModel], Any] = {}


class NoMirror(TypeError):
    """The model has a validator no TypedDict can carry."""


def mirror(model: type[BaseModel]) -> Any:
    """The TypedDict that validates what `model` validates, minus explicit nulls."""
    if model in _mirrors:
        return _mirrors[model]
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.field_validators:
        raise NoMirror(f"{model.__name__} has validators of its own")
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.alias not in (None, name):
            raise NoMirror(f"{model.__name__}.{name} has an alias")
        annotation = mirror_type(field.annotation)
        if field.metadata:
            annotation = Annotated[annotation, *field.metadata]
        fields[name] = annotation if field.is_required() else NotRequired[annotation]
    typed = cast(Any, TypedDict)(model.__name__, fields)
    typed.__pydantic_config__ = _CONFIG
    _mirrors[model] = typed
    return typed


def mirror_type(annotation: Any) -> Any:
    """The mirror of a type that may hold models (a union of them, a list, ...)."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return mirror(annotation)
    if origin is Annotated:
        return Annotated[mirror_type(annotation.__origin__), *annotation.__metadata__]
    if origin in (Union, types.UnionType):
        # A member that cannot be mirrored is left out: the mirror refuses it, the model decides.
        members = []
        for arg in get_args(annotation):
            if arg is not type(None):
                with contextlib.suppress(NoMirror):
                    members.append(mirror_type(arg))
        if not members:
            raise NoMirror(f"no member of {annotation} can be mirrored")
        return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
    if origin is list:
        (item,) = get_args(annotation)
        return list[mirror_type(item)]  # type: ignore[misc]
    return annotation
