"""Cursor pagination: a list answers one page of ``items`` and, when more
follow, the opaque ``next_cursor`` to pass as ``?cursor=`` for the next one."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from memory_core.errors import ValidationError

__all__ = ["Cursor", "Limit", "Page", "page"]

T = TypeVar("T")

MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The next_cursor of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise ValidationError(
            "invalid cursor: pass the next_cursor of the previous page unchanged"
        ) from None
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError("invalid cursor: pass the next_cursor of the previous page unchanged")
    return offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def page(fetch: Callable[[int, int], Sequence[T]], limit: int, cursor: str | None) -> Page[T]:
    """The page at ``cursor``: ``fetch(limit, offset)`` is asked for one item more
    than ``limit``, to know whether another page follows."""
    offset = _offset(cursor)
    got = list(fetch(limit + 1, offset))
    more = len(got) > limit
    return Page[T](items=got[:limit], next_cursor=_cursor(offset + limit) if more else None)
