"""The one validation layer for what callers give the engine.

Every public entry point (the services behind ``memory.*``, and through them the
MCP server, the CLI and the integrations) checks its arguments here before
anything is read or written, so every bad input raises a
:class:`~memory_core.errors.ValidationError` naming the field and what to do, and
nothing is half-written.

What is checked:

- types: a wrong type (``None`` where text is needed, ``"5"`` for a limit, a
  dict for options) is refused, never left to fail deep inside;
- text hygiene in every text field: no NUL character and no lone surrogate
  (text that cannot be stored as UTF-8); single-line fields (names, sources,
  identifiers) also refuse other control characters;
- sizes, from :class:`Limits` (``Settings.limits``, configurable;
  docs/limits.md lists them);
- JSON values (metadata, trait values): JSON types only, finite numbers, nesting
  depth checked without recursion (so a value nested 5,000 deep is refused, not a
  ``RecursionError``), serialised size;
- times: timezone-aware or naive (taken as UTC) datetimes within years
  1900-8999, so no date arithmetic can overflow.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from memory_core.errors import ValidationError

if TYPE_CHECKING:
    from memory_core.models import ConversationIn, MessageIn

__all__ = [
    "EARLIEST",
    "MAX_COUNT",
    "CheckedModel",
    "LATEST",
    "Limits",
    "as_utc",
    "callback",
    "check_conversation",
    "check_messages",
    "choice",
    "clean_text",
    "describe",
    "flag",
    "integer",
    "items",
    "json_value",
    "limits_hint",
    "metadata",
    "number",
    "optional_integer",
    "optional_text",
    "optional_timestamp",
    "path",
    "record_id",
    "shown",
    "source_name",
    "strings",
    "text",
    "timestamp",
]

E = TypeVar("E", bound=Enum)

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""Times before this are refused (history older than 1900 is not conversations)."""
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Times from this on are refused (far enough that no date arithmetic overflows)."""

MAX_COUNT = 1_000_000_000
"""The largest ``limit`` or ``offset`` a listing accepts."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_ID = re.compile(r"[^\s\x00\ud800-\udfff]{1,200}")


def limits_hint(name: str) -> str:
    """Where a limit is configured, for error messages."""
    return f"Settings.limits.{name}, CONVMEM_LIMITS__{name.upper()}; see docs/limits.md"


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# -- the limits -----------------------------------------------------------------------


class Limits(BaseModel):
    """How large each field a caller gives may be: ``Settings.limits``, set as
    ``[limits]`` in the TOML file or ``CONVMEM_LIMITS__<NAME>`` in the environment.
    Checked at the API boundary by this module for every caller (Python, MCP, CLI,
    integrations); an input over a limit raises
    :class:`~memory_core.errors.ValidationError` and nothing is written. Characters
    are Unicode code points; bytes are UTF-8 JSON. See docs/limits.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Text of one message.
    message_chars: int = Field(default=100_000, ge=1)
    #: Messages in one ingest or ``add_messages`` call.
    messages_per_call: int = Field(default=10_000, ge=1)
    #: A conversation's subject.
    subject_chars: int = Field(default=1_000, ge=1)
    #: A message's author, a profile's display name.
    name_chars: int = Field(default=200, ge=1)
    #: One identifier's value (an email address may have 320 characters).
    identifier_chars: int = Field(default=320, ge=1)
    #: A trait key (lower-case snake_case).
    trait_key_chars: int = Field(default=64, ge=1)
    #: A trait value, serialised as JSON.
    trait_value_bytes: int = Field(default=10_000, ge=1)
    #: A trait's (or an observation's) ``source``.
    source_chars: int = Field(default=64, ge=1)
    #: Metadata of a conversation or message, serialised as JSON.
    metadata_bytes: int = Field(default=16_384, ge=2)
    #: Nesting depth of metadata (``{"a": {"b": 1}}`` is 2 deep).
    metadata_depth: int = Field(default=8, ge=1, le=64)
    #: An observation's text (and its ``value``).
    observation_chars: int = Field(default=2_000, ge=1)
    #: A recall or knowledge-search query.
    query_chars: int = Field(default=10_000, ge=1)
    #: A knowledge source read at once: a file, ``content`` or all ``documents``
    #: (the default of ``memory.knowledge.sources.add(max_bytes=...)``).
    source_bytes: int = Field(default=50_000_000, ge=1)
    #: A knowledge source's or document's title.
    title_chars: int = Field(default=1_000, ge=1)
    #: A knowledge source's or document's URI.
    uri_chars: int = Field(default=2_048, ge=1)
    #: Descriptions (knowledge bases, declared traits) and reasons (merges, retractions).
    description_chars: int = Field(default=2_000, ge=1)
    #: Items in one list argument: identifiers, evidence ids, tags, enum values.
    list_items: int = Field(default=1_000, ge=1)


# -- text -----------------------------------------------------------------------------


def clean_text(value: str, field: str, *, single_line: bool = False) -> str:
    """``value`` if it has no NUL, no lone surrogate and (``single_line``) no
    control character; else :class:`ValidationError`. Type and size are the
    caller's (see :func:`text`)."""
    if "\x00" in value:
        raise ValidationError(f"{field} contains a NUL character; remove it")
    if _SURROGATE.search(value):
        raise ValidationError(
            f"{field} is not valid Unicode (a lone surrogate, e.g. from undecodable bytes); "
            "decode the source as UTF-8"
        )
    if single_line and _CONTROL.search(value):
        raise ValidationError(f"{field} contains a control character (newline, tab, ...)")
    return value


def text(
    value: object,
    field: str,
    max_chars: int,
    *,
    limit: str | None = None,
    required: bool = False,
    single_line: bool = False,
) -> str:
    """``value`` checked as text of at most ``max_chars`` characters (``limit``
    names the :class:`Limits` field, for the message); ``required``: not blank."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {type(value).__name__}")
    if len(value) > max_chars:
        where = f" ({limits_hint(limit)})" if limit else ""
        raise ValidationError(
            f"{field} has {len(value):,} characters, more than the limit of {max_chars:,}{where}"
        )
    clean_text(value, field, single_line=single_line)
    if required and not value.strip():
        raise ValidationError(f"{field} is empty")
    return value


def optional_text(
    value: object,
    field: str,
    max_chars: int,
    *,
    limit: str | None = None,
    single_line: bool = False,
) -> str | None:
    """:func:`text`, or None."""
    if value is None:
        return None
    return text(value, field, max_chars, limit=limit, single_line=single_line)


def source_name(value: object, limits: Limits) -> str:
    """The ``source`` of a trait or an observation: one line, not blank."""
    return text(
        value, "source", limits.source_chars, limit="source_chars", required=True, single_line=True
    )


def record_id(value: object, what: str) -> str:
    """An id naming a record (given to look it up, or chosen for a new one):
    1-200 characters, no whitespace, NUL or lone surrogate."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} id must be a string, not {type(value).__name__}")
    if not _ID.fullmatch(value):
        raise ValidationError(f"invalid {what} id {shown(value)}: 1-200 characters, no whitespace")
    return value


def shown(value: object) -> str:
    """``repr(value)``, shortened to fit an error message."""
    try:
        text = repr(value)
    except ValueError:  # an integer too large to print
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else f"{text[:60]}...({len(text):,} characters)"


def items(value: object, field: str, max_items: int, limit: str = "list_items") -> list[Any]:
    """The items of a list argument, at most ``max_items`` (a single string or a
    dict is refused: it is almost always a forgotten list). ``limit`` names the
    :class:`Limits` field."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ValidationError(f"{field} must be a list, not {type(value).__name__}")
    out = list(itertools.islice(value, max_items + 1))
    if len(out) > max_items:
        raise ValidationError(
            f"{field} has more than {max_items:,} items, the limit ({limits_hint(limit)})"
        )
    return out


def strings(
    value: object,
    field: str,
    *,
    max_items: int,
    max_chars: int,
    single_line: bool = True,
) -> tuple[str, ...]:
    """A list of at most ``max_items`` strings of at most ``max_chars`` each."""
    return tuple(
        text(item, f"{field}[{i}]", max_chars, single_line=single_line)
        for i, item in enumerate(items(value, field, max_items))
    )


# -- numbers, flags, choices ----------------------------------------------------------


def integer(value: object, field: str, low: int, high: int) -> int:
    """A whole number within ``low..high`` (``True``/``"5"`` are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be a whole number, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValidationError(f"{field} must be within {low:,}..{high:,}, got {shown(value)}")
    return value


def optional_integer(value: object, field: str, low: int, high: int) -> int | None:
    """:func:`integer`, or None."""
    return None if value is None else integer(value, field, low, high)


def number(value: object, field: str, low: float, high: float) -> float:
    """A finite number within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} must be a number, not {type(value).__name__}")
    if not low <= value <= high:  # NaN fails both comparisons
        raise ValidationError(f"{field} must be within [{low}, {high}], got {shown(value)}")
    return float(value)


def flag(value: object, field: str) -> bool:
    """``True`` or ``False`` (not 0, 1 or "yes")."""
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be True or False, not {type(value).__name__}")
    return value


def choice(kind: type[E], value: object, field: str) -> E:
    """``value`` as a member of the enum ``kind`` (by member or value)."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(m.value) for m in kind)
        raise ValidationError(f"unknown {field} {shown(value)}; use one of: {allowed}") from None


def path(value: object, field: str) -> Path:
    """A filesystem path given as text or a path object."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a path, not {type(value).__name__}")
    return Path(clean_text(value, field))


def callback(value: object, field: str) -> Callable[..., Any] | None:
    """A callable, or None."""
    if value is not None and not callable(value):
        raise ValidationError(f"{field} must be callable, not {type(value).__name__}")
    return value


# -- times ----------------------------------------------------------------------------


def timestamp(value: object, field: str) -> datetime:
    """A datetime within years 1900-8999, as UTC (naive ones are taken as UTC)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime, not {type(value).__name__}")
    try:
        utc = as_utc(value)
    except OverflowError:
        utc = EARLIEST if value.year < 2000 else LATEST
    if not EARLIEST <= utc < LATEST:
        raise ValidationError(
            f"{field} {value.isoformat()} is out of range: give a time between "
            f"{EARLIEST:%Y-%m-%d} and {LATEST.year - 1}-12-31"
        )
    return utc


def optional_timestamp(value: object, field: str) -> datetime | None:
    """:func:`timestamp`, or None."""
    return None if value is None else timestamp(value, field)


# -- JSON values ----------------------------------------------------------------------


def json_value(
    value: object, field: str, *, max_bytes: int, max_depth: int, limit: str | None = None
) -> Any:
    """``value`` if it is JSON (dicts with string keys, lists, strings, finite
    numbers, booleans, None) nested at most ``max_depth`` deep and at most
    ``max_bytes`` serialised. Walks without recursion, and stops as soon as
    the value is too deep or too large. ``limit`` names the :class:`Limits`
    field of the size (None: a fixed size)."""
    size = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                where = f" ({limits_hint('metadata_depth')})" if limit else ""
                raise ValidationError(f"{field} is nested more than {max_depth} deep{where}")
            size += 1 + max(len(item), 1)  # brackets and commas
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise ValidationError(
                            f"{field} has a key of type {type(key).__name__}; "
                            "JSON object keys are strings"
                        )
                    clean_text(key, f"a key of {field}")
                    size += len(key) + 3  # "key":
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            clean_text(item, f"a string in {field}")
            size += len(item) + 2
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{field} holds {item!r}, which JSON cannot represent")
            size += 1
        elif item is None or isinstance(item, bool | int):
            size += 1
        else:
            raise ValidationError(
                f"{field} holds a {type(item).__name__}; use JSON values only (objects "
                "with string keys, lists, strings, numbers, booleans, null)"
            )
        if size > max_bytes:  # ``size`` never exceeds the serialised size: stop early
            break
    if size > max_bytes or len(_dumps(value, field)) > max_bytes:
        where = f" ({limits_hint(limit)})" if limit else ""
        raise ValidationError(f"{field} is more than {max_bytes:,} bytes as JSON{where}")
    return value


def _dumps(value: object, field: str) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (ValueError, TypeError) as exc:  # e.g. an integer of more than 4,300 digits
        raise ValidationError(f"{field} is not JSON: {exc}") from exc


def metadata(value: object, field: str, limits: Limits) -> dict[str, Any]:
    """Metadata (a JSON object) within the metadata limits."""
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be a dict, not {type(value).__name__}")
    return json_value(  # type: ignore[no-any-return]
        value,
        field,
        max_bytes=limits.metadata_bytes,
        max_depth=limits.metadata_depth,
        limit="metadata_bytes",
    )


# -- whole inputs ---------------------------------------------------------------------


def check_messages(messages: Iterable[MessageIn], limits: Limits) -> None:
    """Every message within the limits (text, author, metadata, id)."""
    given = list(messages)
    if len(given) > limits.messages_per_call:
        raise ValidationError(
            f"{len(given):,} messages in one call, more than the limit of "
            f"{limits.messages_per_call:,}; send them in several calls "
            f"({limits_hint('messages_per_call')})"
        )
    for i, m in enumerate(given):
        where = f"messages[{i}]"
        text(m.text, f"{where}.text", limits.message_chars, limit="message_chars", required=True)
        optional_text(
            m.author, f"{where}.author", limits.name_chars, limit="name_chars", single_line=True
        )
        if m.id is not None:
            record_id(m.id, "message")
        metadata(m.metadata, f"{where}.metadata", limits)


def check_conversation(conversation: ConversationIn, limits: Limits) -> None:
    """A conversation to ingest within the limits (subject, metadata, identifiers,
    messages). Call before writing anything: it reads no store."""
    optional_text(conversation.subject, "subject", limits.subject_chars, limit="subject_chars")
    metadata(conversation.metadata, "metadata", limits)
    strings(
        conversation.customer,
        "customer",
        max_items=limits.list_items,
        max_chars=limits.identifier_chars + 32,  # "kind:" too; the value is checked on parsing
    )
    if conversation.id is not None:
        record_id(conversation.id, "conversation")
    if conversation.profile_id is not None:
        record_id(conversation.profile_id, "profile")
    check_messages(conversation.messages, limits)


# -- pydantic models callers build ----------------------------------------------------


class CheckedModel(pydantic.BaseModel):
    """Base of option models callers build themselves (``RecallOptions(...)``,
    ``CrawlOptions(...)``): invalid arguments raise :class:`ValidationError` (one
    line per problem, naming the field), like every other bad input, instead of
    pydantic's own error."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise self._error(exc) from exc

    # With a custom __init__, pydantic validates through it, and wraps what it
    # raises (a ValueError) in its own error: these unwrap it.
    @classmethod
    def model_validate(cls, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(*args, **kwargs)
        except pydantic.ValidationError as exc:
            raise cls._error(exc) from exc

    @classmethod
    def model_validate_json(cls, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(*args, **kwargs)
        except pydantic.ValidationError as exc:
            raise cls._error(exc) from exc

    @classmethod
    def _error(cls, exc: pydantic.ValidationError) -> ValidationError:
        errors = exc.errors()
        if len(errors) == 1 and not errors[0]["loc"]:  # raised by __init__ itself
            inner = (errors[0].get("ctx") or {}).get("error")
            if isinstance(inner, ValidationError):
                return inner
        return ValidationError(f"invalid {cls.__name__}: {describe(exc)}")


# -- pydantic errors ------------------------------------------------------------------


def describe(exc: pydantic.ValidationError) -> str:
    """A pydantic validation error on one line: ``field: problem; field: problem``."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        msg = " ".join(str(err["msg"]).split()).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
