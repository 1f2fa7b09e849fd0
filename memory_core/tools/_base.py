"""What the agent tools share: the strict base model, input validation with
readable errors, and the argument types and help texts used by several tools."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, StringConstraints

from memory_core.errors import ValidationError

__all__ = [
    "KB_HELP",
    "PROFILE_HELP",
    "TRAIT_SOURCE",
    "KnowledgeBaseRef",
    "Model",
    "TraitKey",
    "TraitValue",
    "describe",
    "validate_input",
]

TRAIT_SOURCE = "agent"
"""The ``source`` of traits set through the agent tools (one value per key and source)."""

PROFILE_HELP = (
    "The customer: a profile id (prf_...) or any of their identifiers written as kind:value, "
    "e.g. phone:+16175550142, email:ann@example.com, whatsapp:+447700900123, chat_id:abc123, "
    "crm_id:0015g00000XyZ."
)

KB_HELP = (
    "Only these knowledge bases, by name or id (kb_...); default: every knowledge base "
    "of this business."
)

TraitKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
TraitValue = str | int | float | bool
KnowledgeBaseRef = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def validate_input(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, with failures as a readable :class:`ValidationError`."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid arguments: {describe(exc)}") from exc


def describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(parts)
