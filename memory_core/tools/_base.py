"""What the agent tools share: the strict base model, input validation with
readable errors, and the argument types and help texts used by several tools."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, TypeVar, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from memory_core.errors import ValidationError

__all__ = [
    "CUSTOMER_HELP",
    "KB_HELP",
    "TRAIT_SOURCE",
    "Customer",
    "Identifiers",
    "KnowledgeBaseRef",
    "Model",
    "TraitKey",
    "TraitValue",
    "advanced_options",
    "describe",
    "is_profile_id",
    "validate_input",
]

TRAIT_SOURCE = "agent"
"""The ``source`` of traits set through the agent tools (one value per key and source)."""

CUSTOMER_HELP = "Profile id or identifier, e.g. phone:+16175550142."

KB_HELP = "Only these knowledge bases (names or ids)."

TraitKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
TraitValue = str | int | float | bool
KnowledgeBaseRef = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Customer = Annotated[str, StringConstraints(min_length=1, max_length=320)]
"""A profile id or an identifier as ``kind:value``."""
Identifiers = Annotated[list[Customer], Field(max_length=20)]


def advanced_options(model: type[BaseModel]) -> WithJsonSchema:
    """How a tool's ``advanced`` argument (an object of ``model``: options an agent
    rarely needs) is published: one object named with its options in a line,
    e.g. ``since (ISO 8601)``, ``mode (keyword|vector|hybrid)`` (the values of a
    single enum are listed; lists are named only). Calls are still
    checked against ``model`` (types, bounds, unknown options)."""
    parts = []
    for name, field in model.model_fields.items():
        choices = _choices(field.annotation) if get_origin(field.annotation) is None else ""
        notes = [n for n in (choices, field.description) if n]
        parts.append(f"{name} ({'; '.join(notes)})" if notes else name)
    return WithJsonSchema(
        {"type": "object", "description": f"Advanced, rarely needed: {', '.join(parts)}."}
    )


def _choices(annotation: Any) -> str:
    """The values of the enum ``annotation`` (or inside ``X | None``), as a|b|c."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(member.value) for member in annotation)
    for arg in get_args(annotation):
        if found := _choices(arg):
            return found
    return ""


def is_profile_id(ref: str) -> bool:
    """Whether a customer reference is a profile id rather than an identifier."""
    return ref.startswith("prf_")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def validate_input(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, with failures as a readable :class:`ValidationError`
    (``invalid arguments: max_messages: ...``; an unknown argument names the known ones)."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid arguments: {describe(exc, model)}") from exc


def describe(exc: pydantic.ValidationError, model: type[BaseModel] | None = None) -> str:
    """The errors of ``exc`` as ``where: what`` parts, without pydantic's URLs; an
    unknown top-level argument of ``model`` is named with the arguments it takes."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        what = str(err["msg"])
        if err["type"] == "extra_forbidden":
            what = "unknown argument"
            if model is not None and len(err["loc"]) == 1:
                what += _known(model, str(err["loc"][0]))
        parts.append(f"{where}: {what}" if where else what)
    return "; ".join(parts)


def _known(model: type[BaseModel], name: str) -> str:
    """What to say about an unknown argument ``name`` of ``model``: where it goes if it
    is an advanced option, else the arguments there are."""
    advanced = model.model_fields.get("advanced")
    options = getattr(advanced.annotation, "model_fields", {}) if advanced is not None else {}
    if name in options:
        return f" at the top level: it is an advanced option, advanced={{{name!r}: ...}}"
    return f" (the arguments are: {', '.join(model.model_fields)})"
