"""Request bodies of the REST API, made from the engine's and the agent tools'
own models (one definition each; the OpenAPI document is generated from them).

Where a tool's input names the customer or a record that the REST path already
names (``customer`` of recall, ``source_id`` of a refresh ...), the body is the
tool's model :func:`without` that field. The few bodies only REST has (setting
one trait, linking one identifier ...) are defined here with the engine's types
and the tools' help texts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from memory_core import tools
from memory_core.models import AccessRole, ApiKey, ConversationIn, Message, MessageIn
from memory_core.tools._base import Customer, TraitValue

__all__ = [
    "ApiKeyOut",
    "CorrectObservationBody",
    "CreateKnowledgeBase",
    "CreateProfile",
    "ExtractionJobBody",
    "ImportBody",
    "IssueKey",
    "IssuedKeyOut",
    "LinkIdentifier",
    "MergeProfiles",
    "MessagesAdded",
    "MessagesBody",
    "RecallBody",
    "RefreshSourceBody",
    "RetractBody",
    "SetTrait",
    "without",
]


def without(model: type[BaseModel], *names: str, name: str | None = None) -> type[BaseModel]:
    """``model`` with the fields ``names`` left out (same types, defaults, bounds,
    descriptions; unknown fields still refused)."""
    fields: dict[str, Any] = {
        field_name: (info.annotation, info)
        for field_name, info in model.model_fields.items()
        if field_name not in names
    }
    made: type[BaseModel] = create_model(
        name or f"{model.__name__}Body",
        __config__=ConfigDict(extra="forbid"),
        __doc__=model.__doc__,
        **fields,
    )
    return made


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


if TYPE_CHECKING:  # type checkers see the models the bodies are made from
    RecallBody = tools.RecallInput
    CorrectObservationBody = tools.CorrectObservationInput
    RefreshSourceBody = tools.RefreshKnowledgeSourceInput
else:
    RecallBody = without(tools.RecallInput, "customer", name="RecallRequest")
    CorrectObservationBody = without(
        tools.CorrectObservationInput, "observation_id", name="CorrectObservationRequest"
    )
    RefreshSourceBody = without(
        tools.RefreshKnowledgeSourceInput, "source_id", name="RefreshSourceRequest"
    )
# RecallBody: ``POST /v1/profiles/{ref}/recall``, every recall option of the tool (the
# profile is the path); the others likewise without the id their path names.


class CreateProfile(_Body):
    identifiers: list[Customer] = Field(
        default_factory=list, max_length=20, description="kind:value, e.g. phone:+16175550142."
    )
    display_name: str | None = Field(default=None, max_length=200)


class LinkIdentifier(_Body):
    identifier: Customer = Field(
        description="kind:value; if another profile has it, the two are merged."
    )


class MergeProfiles(_Body):
    other: Customer = Field(description="The other profile (id or identifier).")
    reason: str = Field(default="manual", max_length=200)


class SetTrait(_Body):
    value: TraitValue
    source: str = Field(
        default="api",
        min_length=1,
        max_length=64,
        description="Who says so: api, crm, agent ... (systems of record outrank agent, "
        "which outranks extracted).",
    )
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class RetractBody(_Body):
    reason: str = Field(default="", max_length=200, description="Kept in its history.")


class MessagesBody(_Body):
    messages: list[MessageIn] = Field(
        min_length=1,
        description="Messages to append; a message whose id is already stored is skipped, "
        "so a retry is harmless.",
    )


class MessagesAdded(_Body):
    conversation_id: str
    added: list[Message] = Field(description="The messages stored by this call.")
    skipped: int = Field(
        description="Messages not stored: already there (same id), or "
        "excluded by the tenant's policy."
    )


class ImportBody(_Body):
    conversations: list[ConversationIn] = Field(
        min_length=1, max_length=10_000, description="Each as one line of `convmem ingest`."
    )


class ExtractionJobBody(_Body):
    force: bool = Field(default=False, description="Extract again conversations already extracted.")


class CreateKnowledgeBase(_Body):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)


class IssueKey(_Body):
    role: AccessRole
    name: str = Field(min_length=1, max_length=100, description="e.g. crm-widget")
    expires_at: datetime | None = Field(default=None, description="Default: until revoked.")


if TYPE_CHECKING:
    ApiKeyOut = ApiKey
else:
    ApiKeyOut = without(ApiKey, "salt", "secret_hash", name="ApiKeyOut")
# ApiKeyOut: an API key's record as shown, never its salt or digest.


class IssuedKeyOut(_Body):
    key: ApiKeyOut
    token: str = Field(description="The bearer token: shown this once, never stored.")
