"""Resolving the dates people mention ("yesterday", "next month", "on May 1st")
against the time of the message that mentions them.

:func:`find_dates` finds the mentions in a text; :func:`resolve_dates` rewrites
them as absolute dates ("I went yesterday" at 2023-05-08 -> "I went on
7 May 2023"), so a stored statement stays true when read a year later.

Without a year, a month or day is placed in the direction the sentence points:
the next occurrence when it speaks of the future (``future=True``), else the
last one. Ambiguous numeric dates (``5/1``) are left alone.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

__all__ = ["DateMention", "FUTURE_CUE", "find_dates", "resolve_dates"]

Precision = Literal["day", "week", "weekend", "month", "year"]

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "a couple of": 2, "couple of": 2, "a few": 3, "few": 3,
}  # fmt: skip

DATE_WORDS = frozenset(
    """yesterday today tonight tomorrow last next this coming past ago week weeks weekend
    month months year years day days morning afternoon evening night monday tuesday
    wednesday thursday friday saturday sunday""".split()  # noqa: SIM905 - a word list
) | frozenset(MONTHS)
"""Words one of which (or a digit) every date mention contains: a cheap first test."""
_WORDS = re.compile(r"\w+")

FUTURE_CUE = re.compile(
    r"\b(will|won't|'ll|shall|going|gonna|plan(?:ning)? to|intend|next|tomorrow|"
    r"upcoming|soon|in \w+ (?:days?|weeks?|months?)|"
    r"(?:'m|am|are|is)\s+(?:moving|relocating|leaving|travell?ing|flying|starting|switching))\b",
    re.IGNORECASE,
)

_MONTH = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|(?-i:May)|may(?=\s+\d)|june?|"
    r"july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?P<day>[12]?\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PREP = r"(?:(?P<prep>on|in|since|by|until|before|after|from|during)\s+)?"
_NUM = (
    r"(?P<n>\d{1,2}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"(?:a\s+)?couple\s+of|(?:a\s+)?few)"
)
_UNIT = r"(?P<unit>day|week|month|year)s?"
_WEEKDAY = r"(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"


@dataclass(frozen=True)
class DateMention:
    """A date mentioned in a text, resolved: ``start`` is its first day."""

    start_index: int
    end_index: int
    phrase: str
    start: date
    precision: Precision
    prep: str | None = None
    bare: bool = False  # a month named without a preposition ("the March invoice")

    def render(self) -> str:
        """The absolute form, with its preposition: "on 7 May 2023", "in May 2023"."""
        d = self.start
        if self.precision == "day":
            body, default = f"{d.day} {calendar.month_name[d.month]} {d.year}", "on"
        elif self.precision == "week":
            body, default = f"the week of {d.day} {calendar.month_name[d.month]} {d.year}", "in"
        elif self.precision == "weekend":
            body = f"the weekend of {d.day} {calendar.month_name[d.month]} {d.year}"
            default = "on"
        elif self.precision == "month":
            body, default = f"{calendar.month_name[d.month]} {d.year}", "in"
        else:
            body, default = str(d.year), "in"
        if self.bare:
            return body
        prep = self.prep if self.prep and self.prep not in ("on", "in") else default
        return f"{prep} {body}"


def _number(text: str) -> int:
    text = " ".join(text.lower().split())
    return int(text) if text.isdigit() else NUMBERS[text]


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _shift_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _place(month: int, day: int | None, ref: date, future: bool) -> date | None:
    """The date of ``month``/``day`` with no year, next or last from ``ref``."""
    for year in (ref.year, ref.year + 1) if future else (ref.year, ref.year - 1):
        try:
            candidate = date(year, month, day or 1)
        except ValueError:
            return None
        if day is None:
            after = (candidate.year, candidate.month) >= (ref.year, ref.month)
            before = (candidate.year, candidate.month) <= (ref.year, ref.month)
        else:
            after, before = candidate >= ref, candidate <= ref
        if (future and after) or (not future and before):
            return candidate
    return None


_APPROX = frozenset({"about", "around", "roughly", "nearly", "almost", "over", "some"})

Handler = Callable[[re.Match[str], date, bool], tuple[date, Precision] | None]


def _relative_day(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    word = " ".join(m.group("word").lower().split())
    offsets = {
        "today": 0,
        "tonight": 0,
        "this morning": 0,
        "this afternoon": 0,
        "this evening": 0,
        "yesterday": -1,
        "last night": -1,
        "the day before yesterday": -2,
        "tomorrow": 1,
        "the day after tomorrow": 2,
    }
    return ref + timedelta(days=offsets[word]), "day"


def _relative_period(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    which, unit = m.group("which").lower(), m.group("period").lower()
    step = {"last": -1, "past": -1, "this": 0, "next": 1, "coming": 1}[which]
    if unit == "week":
        monday = ref - timedelta(days=ref.weekday())
        return monday + timedelta(weeks=step), "week"
    if unit == "weekend":
        saturday = ref + timedelta(days=(5 - ref.weekday()) % 7)
        if ref.weekday() == 6:  # on a Sunday, "this weekend" is the one ending today
            saturday = ref - timedelta(days=1)
        return saturday + timedelta(weeks=step), "weekend"
    if unit == "month":
        return _shift_months(ref, step), "month"
    return date(ref.year + step, 1, 1), "year"


def _weekday(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    target = WEEKDAYS[m.group("weekday").lower()]
    which = (m.group("which") or "").lower()
    if which == "next" or (not which and future):
        ahead = (target - ref.weekday()) % 7 or 7
        return ref + timedelta(days=ahead), "day"
    if which == "this":
        return ref + timedelta(days=target - ref.weekday()), "day"
    back = (ref.weekday() - target) % 7 or 7
    return ref - timedelta(days=back), "day"


def _ago(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    n, unit = _number(m.group("n")), m.group("unit").lower()
    sign = -1 if m.group("dir").lower() == "ago" else 1
    if unit == "day":
        return ref + timedelta(days=sign * n), "day"
    if unit == "week":
        return _monday(ref + timedelta(weeks=sign * n)), "week"
    if unit == "month":
        return _shift_months(ref, sign * n), "month"
    return date(ref.year + sign * n, 1, 1), "year"


def _in_n(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    n, unit = _number(m.group("n")), m.group("unit").lower()
    if unit == "day":
        return ref + timedelta(days=n), "day"
    if unit == "week":
        return _monday(ref + timedelta(weeks=n)), "week"
    if unit == "month":
        return _shift_months(ref, n), "month"
    return date(ref.year + n, 1, 1), "year"


def _month_day(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    name = m.group("month")
    month = MONTHS[name.lower().rstrip(".")]
    day = int(m.group("day")) if m.group("day") else None
    bare = day is None and not m.group("year") and not m.group("prep")
    if bare and (not name[0].isupper() or month == 5):  # "we march", "May I ask"
        return None
    if m.group("year"):
        try:
            return date(int(m.group("year")), month, day or 1), "day" if day else "month"
        except ValueError:
            return None
    placed = _place(month, day, ref, future)
    return None if placed is None else (placed, "day" if day else "month")


def _iso(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    try:
        return date(int(m.group("y")), int(m.group("m")), int(m.group("d"))), "day"
    except ValueError:
        return None


def _year(m: re.Match[str], ref: date, future: bool) -> tuple[date, Precision] | None:
    return date(int(m.group("year")), 1, 1), "year"


_PATTERNS: tuple[tuple[re.Pattern[str], Handler], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), handler)
    for pattern, handler in (
        (
            _PREP + r"\b(?P<word>the day (?:before yesterday|after tomorrow)|today|tonight|"
            r"yesterday|tomorrow|last night|this (?:morning|afternoon|evening))\b",
            _relative_day,
        ),
        (_PREP + r"\b(?P<y>(?:19|20)\d\d)-(?P<m>[01]?\d)-(?P<d>[0-3]?\d)\b", _iso),
        (
            _PREP
            + r"\b(?:the\s+)?"
            + _DAY
            + r"\s+(?:of\s+)?"
            + _MONTH
            + r"(?:,?\s+"
            + _YEAR
            + r")?\b",
            _month_day,
        ),
        (
            _PREP + r"\b" + _MONTH + r"(?:\s+" + _DAY + r"\b)?(?:,?\s+" + _YEAR + r")?\b",
            _month_day,
        ),
        (
            _PREP + r"\b(?:(?P<which>last|next|this|coming)\s+)?" + _WEEKDAY + r"\b",
            _weekday,
        ),
        (
            _PREP + r"\b(?:the\s+)?(?P<which>last|past|this|next|coming)\s+"
            r"(?P<period>week(?:end)?|month|year)\b",
            _relative_period,
        ),
        (
            r"\b(?:(?P<prep>about|around|roughly|nearly|almost|over|some)\s+)?"
            + _NUM
            + r"\s+"
            + _UNIT
            + r"\s+(?P<dir>ago|from now)\b",
            _ago,
        ),
        (r"\b(?P<prep>in)\s+" + _NUM + r"\s+" + _UNIT + r"(?:'?\s+time)?\b", _in_n),
        (r"\b(?P<prep>in|since|during)\s+" + _YEAR + r"\b", _year),
    )
)


def find_dates(text: str, ref: datetime | date, *, future: bool | None = None) -> list[DateMention]:
    """Every date mention in ``text``, resolved against ``ref``, in text order.

    ``future`` says which way the sentence points (next occurrence of "May" or
    "Monday" vs last); by default it is guessed from cue words ("will", "next").
    """
    if DATE_WORDS.isdisjoint(_WORDS.findall(text.casefold())) and not any(
        c.isdigit() for c in text
    ):
        return []
    day = ref.date() if isinstance(ref, datetime) else ref
    ahead = bool(FUTURE_CUE.search(text)) if future is None else future
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for pattern, handler in _PATTERNS:
        for m in pattern.finditer(text):
            span = m.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            resolved = handler(m, day, ahead)
            if resolved is None:
                continue
            prep = m.groupdict().get("prep")
            if prep and prep.lower() in _APPROX:
                prep = "around"
            bare = handler is _month_day and not prep and resolved[1] == "month"
            found.append(
                DateMention(
                    span[0],
                    span[1],
                    m.group(),
                    resolved[0],
                    resolved[1],
                    prep.lower() if prep else None,
                    bare,
                )
            )
            taken.append(span)
    return sorted(found, key=lambda d: d.start_index)


def resolve_dates(
    text: str, ref: datetime | date, *, future: bool | None = None
) -> tuple[str, list[DateMention]]:
    """``text`` with each date mention replaced by its absolute form, and the mentions."""
    mentions = find_dates(text, ref, future=future)
    out: list[str] = []
    last = 0
    for mention in mentions:
        out.append(text[last : mention.start_index])
        out.append(mention.render())
        last = mention.end_index
    out.append(text[last:])
    return "".join(out), mentions
