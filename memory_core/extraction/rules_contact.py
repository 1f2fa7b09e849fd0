"""Heuristic rules, continued: contact details the customer gives, where they
live and their moves.

See :mod:`memory_core.extraction.rules` for the conventions.
"""

from __future__ import annotations

import re

from memory_core.errors import InvalidIdentifierError
from memory_core.extraction.dates import find_dates, resolve_dates
from memory_core.extraction.rules import Finding, Sentence, triggered
from memory_core.identity import normalize
from memory_core.models import ObservationKind as K

__all__ = ["contact_details", "location"]

_F = re.IGNORECASE
_I = r"(?:^|(?<=[\s,;:(\"']))"  # start of a clause


# -- contact details ---------------------------------------------------------------------

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_OTHERS = re.compile(
    r"\b(?:my\s+(?:wife|husband|partner|son|daughter|mom|mother|dad|father|friend|boss|"
    r"colleague|brother|sister)|his|her|their|your)'?s?\s+(?:new\s+)?(?:e-?mail|number|phone)",
    _F,
)
_PHONE = re.compile(
    r"\b(?:my\s+(?:new\s+|cell\s+|mobile\s+|work\s+|home\s+|best\s+|contact\s+)?(?:phone\s+)?"
    r"(?:number|phone|cell|mobile)(?:'s|\s+is(?:\s+now)?|:)|(?:call|text|reach|contact|ring)\s+me\s+"
    r"(?:back\s+)?(?:at|on))\s*(?P<num>\+?\(?\d[\d\s().-]{6,18}\d)",
    _F,
)


@triggered("number phone cell mobile call text reach contact ring", chars="@")
def contact_details(s: Sentence) -> list[Finding]:
    """An email address or phone number the customer gives as theirs (a trait, never
    an identifier link: linking identifiers from free text is left to a person)."""
    if _OTHERS.search(s.text):
        return []
    out: list[Finding] = []
    for address in dict.fromkeys(a.lower() for a in _EMAIL.findall(s.text)):
        out.append(
            Finding(
                "email",
                K.FACT,
                f"Gave {address} as their email address",
                0.8,
                "contact_email",
                address,
                (("contact_email", address),),
            )
        )
    if m := _PHONE.search(s.text):
        try:
            number = normalize("phone", m.group("num"), default_region=s.region).value
        except InvalidIdentifierError:
            return out
        out.append(
            Finding(
                "phone",
                K.FACT,
                f"Gave {number} as their phone number",
                0.8,
                "contact_phone",
                number,
                (("contact_phone", number),),
            )
        )
    return out


# -- location and moves ------------------------------------------------------------------

_NOT_PLACES = frozenset(
    """i the a an my your our basic standard premium pro plus family unlimited business
    enterprise starter gold silver platinum bronze monday tuesday wednesday thursday friday
    saturday sunday january february march april may june july august september october
    november december today tomorrow yesterday""".split()  # noqa: SIM905 - a word list
)
_PLACE = (
    r"(?P<place>[A-Z][a-zA-Z.'-]+(?:\s+[A-Z][a-zA-Z.'-]+){0,2}"
    r"(?:,\s*[A-Z]{2}\b|,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)?)"
)
_LIVE = tuple(
    re.compile(pattern)
    for pattern in (
        rf"{_I}(?:I|[Ww]e)\s+(?:now\s+|currently\s+|still\s+)?(?:live|reside|(?:am|'m|are|'re)\s+"
        rf"living)\s+in\s+{_PLACE}",
        rf"{_I}(?:I|[Ww]e)(?:'m|\s+am|'re|\s+are)\s+(?:now\s+)?(?:based|located)\s+in\s+{_PLACE}",
        rf"\bmy\s+(?:home|house|apartment|flat)\s+is\s+in\s+{_PLACE}",
    )
)
_MOVED = re.compile(
    rf"{_I}(?:I|[Ww]e)(?:'ve|\s+have)?\s+(?:just\s+|recently\s+|finally\s+|now\s+)?(?:moved|"
    rf"relocated)\s+(?:back\s+|over\s+)?to\s+{_PLACE}"
)
_MOVING = re.compile(
    rf"{_I}(?:I|[Ww]e)(?:'m|\s+am|'re|\s+are|'ll\s+be|\s+will\s+be)\s+(?:soon\s+)?(?:moving|relocating)"
    rf"\s+(?:back\s+|over\s+)?to\s+{_PLACE}"
)
_FROM = re.compile(rf"{_I}I(?:'m|\s+am)\s+(?P<orig>originally\s+)?from\s+{_PLACE}")


def _place(m: re.Match[str]) -> str | None:
    place = m.group("place").strip().rstrip(".,'")
    first = place.split()[0].lower().strip(",.")
    return None if first in _NOT_PLACES else place


@triggered(
    "live living reside based located moved relocated moving relocating from home house "
    "apartment flat"
)
def location(s: Sentence) -> list[Finding]:
    """ "I moved to Denver last month" -> Lives in Denver (moved in April 2024)."""
    if s.hypothetical:
        return []
    if (m := _MOVED.search(s.text)) and (place := _place(m)) and not s.is_question:
        mentions = find_dates(s.text[m.end() :], s.ts, future=False)
        when = (
            mentions[0].render() if mentions else f"by {s.ts.day} {s.ts.strftime('%B')} {s.ts.year}"
        )
        return [
            Finding(
                "moved",
                K.CONTEXT,
                f"Lives in {place} (moved {when})",
                0.85,
                "location",
                place,
                (("location", place),),
            )
        ]
    if (m := _MOVING.search(s.text)) and (place := _place(m)):
        resolved, mentions = resolve_dates(s.text[m.end() :], s.ts, future=True)
        when = f" {mentions[0].render()}" if mentions else ""
        return [
            Finding(
                "moving", K.INTENT, f"Plans to move to {place}{when}", 0.8, "planned_move", place
            )
        ]
    m = next((found for p in _LIVE if (found := p.search(s.text))), None)
    if m and (place := _place(m)) and not s.is_question:
        return [
            Finding(
                "lives",
                K.CONTEXT,
                f"Lives in {place}",
                0.85,
                "location",
                place,
                (("location", place),),
            )
        ]
    if (m := _FROM.search(s.text)) and (place := _place(m)) and not s.is_question:
        confidence = 0.75 if m.group("orig") else 0.6
        return [
            Finding("origin", K.CONTEXT, f"Is originally from {place}", confidence, "origin", place)
        ]
    return []
