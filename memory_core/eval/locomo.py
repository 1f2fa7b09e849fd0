"""Loader for the LoCoMo long-conversation benchmark (``locomo10.json`` layout).

The file is a JSON list of samples. Each sample holds one conversation between
two speakers, split into dated sessions of turns, and a list of questions whose
``evidence`` names the turns (``dia_id`` such as ``D3:12``) that answer them.

Quirks handled here (see ``shared/eval/README.md``):

- evidence entries may hold several ids (``"D8:6; D9:17"``): they are split on
  ``;`` and whitespace;
- ids with leading zeros (``D30:05``) are normalised (``D30:5``); what still does
  not match ``D<int>:<int>`` (``"D"``, ``"D:11:26"``) is dropped and kept aside in
  :attr:`LocomoQuestion.dropped_evidence`;
- questions left with no evidence stay in the model but are not evaluable
  (:attr:`LocomoQuestion.is_evaluable`); the evaluator skips them;
- adversarial questions (category 5) carry their answer under
  ``adversarial_answer``; non-string answers (ints) are turned into strings;
- some samples list dates for sessions that have no turns: those dates are
  ignored (every session that has turns must have a date).

Session dates look like ``"1:56 pm on 8 May, 2023"``; :func:`parse_locomo_date`
also accepts upper-case or dotted am/pm, a missing comma, abbreviated month
names and 24-hour times without am/pm. Dates carry no time zone in the data and
are returned as UTC.

Malformed files raise :class:`~memory_core.errors.ValidationError` naming the
file and the problem.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory_core.errors import ValidationError

__all__ = [
    "CATEGORY_NAMES",
    "LocomoQuestion",
    "LocomoSample",
    "LocomoSession",
    "LocomoTurn",
    "load_locomo",
    "normalise_dia_id",
    "parse_evidence",
    "parse_locomo_date",
    "turn_text",
]

CATEGORY_NAMES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
"""LoCoMo question categories, numbered as in the official evaluation code."""

ADVERSARIAL = 5

_DIA_ID = re.compile(r"D(\d+):(\d+)")
_EVIDENCE_SPLIT = re.compile(r"[;\s]+")
_SESSION_KEY = re.compile(r"session_(\d+)")
_DATE = re.compile(
    r"""\s*(?P<hour>\d{1,2}):(?P<minute>\d{2})
        \s*(?:(?P<ampm>[ap])\.?\s*m\.?)?
        \s+on\s+(?P<day>\d{1,2})\s+(?P<month>[a-z]+)\.?\s*,?\s*(?P<year>\d{4})\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
_MONTHS: dict[str, int] = {
    name: number
    for number, full in enumerate(_MONTH_NAMES.split(), start=1)
    for name in (full, full[:3])
} | {"sept": 9}
# Leading phrases of BLIP captions ("a photo of a dog ..."), dropped by turn_text
# so the indexed text reads "[shares a photo: a dog ...]".
_CAPTION_PREFIX = re.compile(
    r"(?:a|an)\s+(?:photo|photograph|photography|picture|image)\s+of\s+", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class LocomoTurn:
    """One utterance. ``dia_id`` is normalised (``D3:12``, no leading zeros)."""

    dia_id: str
    speaker: str
    text: str
    blip_caption: str | None = None


@dataclass(frozen=True, slots=True)
class LocomoSession:
    """One dated session (``session_<index>`` in the file), turns in order."""

    index: int
    date: datetime
    turns: list[LocomoTurn]


@dataclass(frozen=True, slots=True)
class LocomoQuestion:
    """A question with its gold answer and cleaned evidence ids.

    ``evidence`` holds normalised, de-duplicated ``D<int>:<int>`` ids in file
    order; ``dropped_evidence`` the pieces that could not be read as ids.
    """

    question: str
    answer: str | None
    category: int
    evidence: tuple[str, ...]
    dropped_evidence: tuple[str, ...] = ()

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES[self.category]

    @property
    def is_evaluable(self) -> bool:
        """False when no evidence id survived cleaning: evidence recall skips it."""
        return bool(self.evidence)


@dataclass(frozen=True, slots=True)
class LocomoSample:
    """One conversation (to be ingested as its own profile) and its questions."""

    sample_id: str
    speaker_a: str
    speaker_b: str
    sessions: list[LocomoSession]
    questions: list[LocomoQuestion]

    def iter_turns(self) -> Iterator[tuple[LocomoSession, LocomoTurn]]:
        """Every turn with its session, in conversation order."""
        for session in self.sessions:
            for turn in session.turns:
                yield session, turn

    @property
    def turn_count(self) -> int:
        return sum(len(session.turns) for session in self.sessions)

    @property
    def evaluable_questions(self) -> list[LocomoQuestion]:
        """The questions evidence recall is measured on (those with evidence)."""
        return [q for q in self.questions if q.is_evaluable]

    def dangling_evidence(self) -> list[tuple[LocomoQuestion, str]]:
        """Well-formed evidence ids that name no turn of this sample.

        They are kept (a retriever cannot find them, so they count as misses);
        this lists them for reporting.
        """
        ids = {turn.dia_id for _, turn in self.iter_turns()}
        return [(q, e) for q in self.questions for e in q.evidence if e not in ids]


def turn_text(turn: LocomoTurn) -> str:
    """The text to index for a turn: its text, plus the shared photo's caption.

    Captions in the data read "a photo of ..." (or "a photography of ..."); that
    phrase is dropped so the result reads ``"<text> [shares a photo: a dog ...]"``.
    """
    text = turn.text.strip()
    if not turn.blip_caption:
        return text
    caption = turn.blip_caption.strip()
    stripped = _CAPTION_PREFIX.sub("", caption, count=1).strip()
    if _CAPTION_PREFIX.match(caption) and stripped:
        caption = stripped
    suffix = f"[shares a photo: {caption}]"
    return f"{text} {suffix}" if text else suffix


def normalise_dia_id(raw: str) -> str | None:
    """``"D30:05"`` -> ``"D30:5"``; None when ``raw`` is not ``D<int>:<int>``."""
    match = _DIA_ID.fullmatch(raw.strip())
    if match is None:
        return None
    return f"D{int(match.group(1))}:{int(match.group(2))}"


def parse_evidence(raw: list[Any] | tuple[Any, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Clean a question's evidence list: ``(kept ids, dropped pieces)``.

    Entries are split on ``;`` and whitespace, each piece normalised with
    :func:`normalise_dia_id`; duplicates are removed, file order is kept.
    """
    kept: list[str] = []
    dropped: list[str] = []
    for entry in raw:
        for piece in _EVIDENCE_SPLIT.split(str(entry)):
            if not piece:
                continue
            dia_id = normalise_dia_id(piece)
            if dia_id is None:
                dropped.append(piece)
            elif dia_id not in kept:
                kept.append(dia_id)
    return tuple(kept), tuple(dropped)


def parse_locomo_date(text: str) -> datetime:
    """Parse a session date such as ``"1:56 pm on 8 May, 2023"`` (returned as UTC).

    Raises ValueError when ``text`` is not such a date.
    """
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date like '1:56 pm on 8 May, 2023'")
    hour = int(match.group("hour"))
    minute = int(match.group("minute"))
    ampm = match.group("ampm")
    if ampm is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"{text!r}: hour {hour} is not valid with am/pm")
        hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
    month = _MONTHS.get(match.group("month").lower())
    if month is None:
        raise ValueError(f"{text!r}: unknown month {match.group('month')!r}")
    try:
        return datetime(
            int(match.group("year")), month, int(match.group("day")), hour, minute, tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def load_locomo(path: str | os.PathLike[str]) -> list[LocomoSample]:
    """Read a LoCoMo JSON file (a list of samples) into typed samples, in file order."""
    file = Path(path)
    try:
        with file.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ValidationError(
            f"{file}: LoCoMo file not found; get data/locomo10.json from "
            "github.com/snap-research/LoCoMo (CC BY-NC 4.0) and pass its path "
            "(README: Quality and performance)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{file}: cannot read LoCoMo file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{file}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError(f"{file}: expected a JSON list of samples, got {_kind(data)}")
    samples = [_sample(file, position, raw) for position, raw in enumerate(data)]
    seen: set[str] = set()
    for sample in samples:
        if sample.sample_id in seen:
            raise ValidationError(f"{file}: duplicate sample_id {sample.sample_id!r}")
        seen.add(sample.sample_id)
    return samples


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else type(value).__name__


def _str_field(file: Path, where: str, raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        problem = "is missing" if key not in raw else f"must be a string, got {_kind(value)}"
        raise ValidationError(f"{file}: {where}: {key!r} {problem}")
    return value


def _sample(file: Path, position: int, raw: object) -> LocomoSample:
    where = f"sample #{position}"
    if not isinstance(raw, dict):
        raise ValidationError(f"{file}: {where}: expected an object, got {_kind(raw)}")
    sample_id = _str_field(file, where, raw, "sample_id")
    where = f"sample #{position} ({sample_id})"
    conversation = raw.get("conversation")
    if not isinstance(conversation, dict):
        raise ValidationError(f"{file}: {where}: 'conversation' must be an object")
    speaker_a = _str_field(file, where, conversation, "speaker_a")
    speaker_b = _str_field(file, where, conversation, "speaker_b")

    sessions: list[LocomoSession] = []
    turn_ids: set[str] = set()
    indexed = sorted(
        (int(m.group(1)), key)
        for key in conversation
        if (m := _SESSION_KEY.fullmatch(key)) is not None
    )
    for index, key in indexed:
        sessions.append(_session(file, where, conversation, index, key, turn_ids))

    qa = raw.get("qa", [])
    if not isinstance(qa, list):
        raise ValidationError(f"{file}: {where}: 'qa' must be a list, got {_kind(qa)}")
    questions = [_question(file, f"{where} qa #{i}", item) for i, item in enumerate(qa)]
    return LocomoSample(
        sample_id=sample_id,
        speaker_a=speaker_a,
        speaker_b=speaker_b,
        sessions=sessions,
        questions=questions,
    )


def _session(
    file: Path,
    where: str,
    conversation: dict[str, Any],
    index: int,
    key: str,
    turn_ids: set[str],
) -> LocomoSession:
    raw_turns = conversation[key]
    if not isinstance(raw_turns, list):
        raise ValidationError(f"{file}: {where}: {key!r} must be a list of turns")
    date_key = f"{key}_date_time"
    raw_date = conversation.get(date_key)
    if not isinstance(raw_date, str):
        problem = "is missing" if raw_date is None else f"must be a string, got {_kind(raw_date)}"
        raise ValidationError(f"{file}: {where}: {date_key!r} {problem}")
    try:
        date = parse_locomo_date(raw_date)
    except ValueError as exc:
        raise ValidationError(f"{file}: {where}: {date_key}: {exc}") from None

    turns: list[LocomoTurn] = []
    for i, raw in enumerate(raw_turns):
        turn_where = f"{where} {key} turn #{i}"
        if not isinstance(raw, dict):
            raise ValidationError(f"{file}: {turn_where}: expected an object, got {_kind(raw)}")
        raw_id = _str_field(file, turn_where, raw, "dia_id")
        dia_id = normalise_dia_id(raw_id)
        if dia_id is None:
            raise ValidationError(
                f"{file}: {turn_where}: dia_id {raw_id!r} is not of the form D<int>:<int>"
            )
        if dia_id in turn_ids:
            raise ValidationError(f"{file}: {turn_where}: duplicate dia_id {dia_id!r}")
        turn_ids.add(dia_id)
        caption = raw.get("blip_caption")
        if caption is not None and not isinstance(caption, str):
            raise ValidationError(
                f"{file}: {turn_where}: 'blip_caption' must be a string, got {_kind(caption)}"
            )
        turns.append(
            LocomoTurn(
                dia_id=dia_id,
                speaker=_str_field(file, turn_where, raw, "speaker"),
                text=_str_field(file, turn_where, raw, "text"),
                blip_caption=(caption.strip() or None) if caption is not None else None,
            )
        )
    return LocomoSession(index=index, date=date, turns=turns)


def _question(file: Path, where: str, raw: object) -> LocomoQuestion:
    if not isinstance(raw, dict):
        raise ValidationError(f"{file}: {where}: expected an object, got {_kind(raw)}")
    question = _str_field(file, where, raw, "question")
    category = raw.get("category")
    if isinstance(category, bool) or not isinstance(category, int):
        raise ValidationError(f"{file}: {where}: 'category' must be an integer, got {category!r}")
    if category not in CATEGORY_NAMES:
        raise ValidationError(f"{file}: {where}: unknown category {category} (expected 1-5)")
    key = "answer"
    if category == ADVERSARIAL and "adversarial_answer" in raw:
        key = "adversarial_answer"
    answer = raw.get(key)
    evidence = raw.get("evidence", [])
    if not isinstance(evidence, list):
        raise ValidationError(f"{file}: {where}: 'evidence' must be a list, got {_kind(evidence)}")
    kept, dropped = parse_evidence(evidence)
    return LocomoQuestion(
        question=question,
        answer=None if answer is None else str(answer),
        category=category,
        evidence=kept,
        dropped_evidence=dropped,
    )
