"""The heuristic extractor's rules: precise patterns for the customer facts that
matter most in customer service.

Each rule reads one customer sentence (or, for channel preferences, one whole
message) and returns :class:`Finding`\\ s: a normalised, self-contained
statement ("Prefers SMS over phone calls", "Lives in Denver (moved in April
2024)", "Is on the Premium plan"), its kind, the slot it fills and any trait
update. Rules favour precision over recall: they anchor on first-person
phrasing ("I live in", "my card was declined"), skip questions and
hypotheticals where a fact is claimed, and leave anything vaguer to an LLM.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from memory_core.extraction.dates import find_dates
from memory_core.models import ObservationKind as K

__all__ = [
    "CHANNEL_NAMES",
    "LANGUAGES",
    "Finding",
    "Sentence",
    "channel_preferences",
    "contact_times",
    "language",
    "likes",
    "preferences",
    "strip_lead",
    "third_person",
    "when",
]


@dataclass(frozen=True)
class Sentence:
    """A stretch of customer text, with the time it was said."""

    text: str
    ts: datetime
    region: str = "US"

    @cached_property
    def words(self) -> frozenset[str]:
        """The lower-cased words of the text, for a rule's cheap first test."""
        return frozenset(_WORDS.findall(self.text.casefold()))

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")

    @property
    def hypothetical(self) -> bool:
        return bool(_HYPOTHETICAL.search(self.text))


@dataclass(frozen=True)
class Finding:
    """What a rule found: a statement, and the slot / trait it fills."""

    rule: str
    kind: K
    text: str
    confidence: float
    trait_key: str | None = None
    value: str | None = None
    traits: tuple[tuple[str, Any], ...] = field(default=())
    specific: bool = True  # False for the generic dated-event rule


Rule = Callable[[Sentence], list[Finding]]
_WORDS = re.compile(r"\w+")


def triggered(words: str, *, chars: str = "") -> Callable[[Rule], Rule]:
    """Run the rule only on text holding one of ``words`` (or of ``chars``): most
    sentences hold none, and a set test is far cheaper than the rule's patterns."""
    keys = frozenset(words.split())

    def wrap(rule: Rule) -> Rule:
        @functools.wraps(rule)
        def gated(s: Sentence) -> list[Finding]:
            if keys.isdisjoint(s.words) and not any(c in s.text for c in chars):
                return []
            return rule(s)

        return gated

    return wrap


_HYPOTHETICAL = re.compile(r"\b(if|whether|unless|suppose|imagine|what if)\b", re.IGNORECASE)
_I = r"(?:^|(?<=[\s,;:(\"']))"  # start of a clause
_F = re.IGNORECASE

# -- wording helpers ---------------------------------------------------------------------

_PRONOUNS = (
    (r"\bI'm\b|\bI am\b", "they are"),
    (r"\bI was\b", "they were"),
    (r"\bI've\b|\bI have\b", "they have"),
    (r"\bI'll\b", "they will"),
    (r"\bI'd\b", "they would"),
    (r"\bI\b", "they"),
    (r"\bmy\b", "their"),
    (r"\bMy\b", "Their"),
    (r"\bme\b", "them"),
    (r"\bmine\b", "theirs"),
    (r"\bmyself\b", "themselves"),
    (r"\byour\b", "the"),
)
_LEAD = re.compile(
    r"^(?:(?:so|and|but|well|actually|oh|yeah|yes|um+|uh+|also|anyway|btw|hey|hi|ok(?:ay)?)"
    r"[,!]?\s+)+",
    _F,
)
_SUBJECT = (
    (re.compile(r"^I(?:'m| am)\s+"), "Is "),
    (re.compile(r"^I was\s+"), "Was "),
    (re.compile(r"^I(?:'ve| have)\s+"), "Has "),
    (re.compile(r"^I(?:'ll| will)\s+"), "Will "),
    (re.compile(r"^I'd\s+"), "Would "),
    (re.compile(r"^I\s+(?:just\s+|finally\s+|also\s+|recently\s+|already\s+)?"), ""),
)


def strip_lead(text: str) -> str:
    """``text`` without leading discourse markers ("so", "well", "oh", ...)."""
    return _LEAD.sub("", text)


def third_person(text: str) -> str:
    """A first-person sentence as a statement about the customer:
    "I went to the store on 7 May 2023." -> "Went to the store on 7 May 2023"."""
    text = _LEAD.sub("", text.strip()).rstrip(" .!;,")
    for subject, replacement in _SUBJECT:
        if subject.match(text):
            text = subject.sub(replacement, text, count=1)
            break
    for pronoun, replacement in _PRONOUNS:
        text = re.sub(pronoun, replacement, text)
    return text[:1].upper() + text[1:]


def _clean(phrase: str) -> str:
    phrase = re.sub(r"\s+", " ", phrase).strip(" .,;:!?\"'")
    for pattern, replacement in _PRONOUNS:
        phrase = re.sub(pattern, replacement, phrase)
    return phrase


def when(s: Sentence, already: str = "") -> str:
    """The first date the sentence mentions, as ' on 7 May 2023' (or ''), unless
    ``already`` (the statement so far) names it."""
    mentions = find_dates(s.text, s.ts)
    if not mentions:
        return ""
    rendered = mentions[0].render()
    return "" if rendered.split(" ", 1)[-1] in already else f" {rendered}"


# -- channel preferences (whole message) ----------------------------------------------------

CHANNEL_NAMES = {
    "sms": "SMS",
    "voice": "phone calls",
    "email": "email",
    "whatsapp": "WhatsApp",
    "chat": "chat",
}
_BY = {"sms": "by SMS", "voice": "by phone", "email": "by email", "whatsapp": "on WhatsApp"}
_CH = {
    "sms": r"texts?(?:\s+messages?)?|texting|sms(?:es)?",
    "voice": r"(?:phone\s+|voice\s+)?calls?|calling|ringing|(?:by|over\s+the|on\s+the)\s+phone",
    "email": r"e-?mails?|e-?mailing",
    "whatsapp": r"whats\s?app",
    "chat": r"(?:live\s+|web\s+|online\s+)?chat",
}
_CH_ANY = "|".join(f"(?P<{name}>{pattern})" for name, pattern in _CH.items())
_CHANNEL_WORD = re.compile(rf"\b(?:{_CH_ANY})\b", _F)
_ME_VERB = {
    "text": "sms", "sms": "sms", "email": "email", "e-mail": "email", "whatsapp": "whatsapp"
}  # fmt: skip
_PREFER_ME = re.compile(
    r"\b(?P<verb>text|sms|e-?mail|whats\s?app)\s+me\b"
    r"(?!\s+(?:the|a|an|my|your|it|this|that|those|these|back|when|if|about|with)\b)",
    _F,
)
_PREFER_CUE = re.compile(
    r"\b(?:I(?:'d|\s+would)?\s+(?:much\s+|really\s+|rather\s+)?(?:prefer|rather)|"
    r"(?:contact|reach)\s+me|get\s+(?:hold\s+of|in\s+touch\s+with)\s+me|"
    r"best\s+(?:way\s+)?to\s+(?:reach|contact)\s+me\s+is)\b(?P<rest>[^.;!?]{0,80})",
    _F,
)
_CHANNEL_FIRST = re.compile(
    rf"\b(?:{_CH_ANY})\s+(?:is|are|works?|would\s+be)\s+(?:much\s+|way\s+)?"
    r"(?:better|best|easier|easiest|preferred)\b(?P<rest>[^.;!?]{0,60})",
    _F,
)
_CONTRAST = re.compile(
    rf"\b(?:than|over|instead\s+of|not|rather\s+than)\s+(?:a\s+|an\s+|getting\s+|being\s+|by\s+)?"
    rf"(?:{_CH_ANY})",
    _F,
)
_AVOID = re.compile(
    r"\b(?:don'?t|do\s+not|never|please\s+don'?t|stop|no\s+more)\s+"
    r"(?P<verb>call|ring|phone|text|sms|e-?mail|message)(?:ing)?\b(?!\s+(?:back|about)\b)|"
    r"\bno\s+(?P<noun>(?:phone\s+)?calls|texts|e-?mails)\b|"
    r"\bI\s+(?:hate|can'?t\s+stand|don'?t\s+like|do\s+not\s+like)\s+"
    r"(?P<disliked>(?:phone\s+)?calls|being\s+called|texts|e-?mails)\b",
    _F,
)
_AVOID_WORD = {
    "call": "voice", "ring": "voice", "phone": "voice", "calls": "voice", "phone calls": "voice",
    "being called": "voice", "text": "sms", "sms": "sms", "texts": "sms", "message": "sms",
    "email": "email", "e-mail": "email", "emails": "email", "e-mails": "email",
}  # fmt: skip


def _channel(match: re.Match[str]) -> str | None:
    return next((name for name in _CH if match.group(name)), None)


@triggered(
    "text texts texting sms smses call calls calling phone ring ringing email emails e mail "
    "mailing whatsapp whats chat message"
)
def channel_preferences(s: Sentence) -> list[Finding]:
    """ "Please text me, don't call" -> Prefers SMS over phone calls (preferred_channel=sms)."""
    text = s.text
    prefer: list[str] = []
    avoid: list[str] = []
    for m in _PREFER_ME.finditer(text):
        prefer.append(_ME_VERB[m.group("verb").lower().replace(" ", "")])
        after = text[m.end() : m.end() + 40]
        avoid += [ch for c in _CONTRAST.finditer(after) if (ch := _channel(c))]
    for m in _PREFER_CUE.finditer(text):
        rest = m.group("rest")
        first = _CHANNEL_WORD.search(rest)
        if first and first.start() <= 40 and (ch := _channel(first)):
            prefer.append(ch)
        avoid += [ch for c in _CONTRAST.finditer(rest) if (ch := _channel(c))]
    for m in _CHANNEL_FIRST.finditer(text):
        if ch := _channel(m):
            prefer.append(ch)
        avoid += [ch for c in _CONTRAST.finditer(m.group("rest")) if (ch := _channel(c))]
    for m in _AVOID.finditer(text):
        word = (m.group("verb") or m.group("noun") or m.group("disliked") or "").lower()
        if ch := _AVOID_WORD.get(" ".join(word.split())):
            avoid.append(ch)
    if s.is_question and not prefer:
        return []
    prefer = list(dict.fromkeys(prefer))
    avoid = [ch for ch in dict.fromkeys(avoid) if ch not in prefer]
    if prefer:
        best = prefer[0]
        if avoid:
            over = " and ".join(CHANNEL_NAMES[a] for a in avoid)
            text = f"Prefers {CHANNEL_NAMES[best]} over {over}"
        else:
            text = f"Prefers to be contacted {_BY.get(best, 'by ' + CHANNEL_NAMES[best])}"
        return [
            Finding(
                "channel",
                K.PREFERENCE,
                text,
                0.85,
                "preferred_channel",
                best,
                (("preferred_channel", best),),
            )
        ]
    return [
        Finding(
            "channel-avoid",
            K.PREFERENCE,
            f"Does not want {CHANNEL_NAMES[ch]}",
            0.8,
            f"avoid_channel:{ch}",
            "avoid",
        )
        for ch in avoid
    ]


# -- language --------------------------------------------------------------------------

LANGUAGES = {
    "english": "en", "spanish": "es", "french": "fr", "german": "de", "portuguese": "pt",
    "italian": "it", "mandarin": "zh", "chinese": "zh", "cantonese": "yue", "japanese": "ja",
    "korean": "ko", "vietnamese": "vi", "arabic": "ar", "hindi": "hi", "russian": "ru",
    "polish": "pl", "tagalog": "tl", "dutch": "nl", "turkish": "tr", "ukrainian": "uk",
    "greek": "el", "hebrew": "he", "bengali": "bn", "urdu": "ur", "punjabi": "pa",
    "farsi": "fa", "persian": "fa", "swahili": "sw", "somali": "so", "haitian creole": "ht",
}  # fmt: skip
_LANG = "|".join(sorted(LANGUAGES, key=len, reverse=True))
_LANGUAGE = re.compile(
    rf"\b(?:(?:can|could)\s+(?:we|you)\s+(?:please\s+)?(?:speak|talk|continue|do\s+this|write|"
    rf"reply|chat|switch\s+to|go)(?:\s+in)?|I(?:'d|\s+would)?\s+prefer(?:\s+to\s+(?:speak|talk|"
    rf"communicate|continue|chat))?(?:\s+in)?|my\s+(?:first|native|preferred|main)\s+language\s+"
    rf"is|I\s+(?:only|mostly|mainly)\s+speak|in\s+(?=(?:{_LANG})\s+please))\s+"
    rf"(?P<lang>{_LANG})\b",
    _F,
)
_SPEAK = re.compile(rf"\bI\s+speak\s+(?P<lang>{_LANG})\b", _F)
_NO_ENGLISH = re.compile(
    r"\bI\s+(?:don'?t|do\s+not|can'?t|cannot)\s+(?:speak|read|understand)\s+(?:much\s+)?"
    r"english(?:\s+(?:very\s+)?well)?\b",
    _F,
)
_NATIVE = (
    (re.compile(r"\b(?:hablo|habla(?:s)?|en)\s+espa[ñn]ol\b", _F), "es"),
    (re.compile(r"\b(?:je\s+parle|parlez-vous|en)\s+fran[çc]ais\b", _F), "fr"),
    (re.compile(r"\b(?:ich\s+spreche|auf)\s+deutsch\b", _F), "de"),
    (re.compile(r"\b(?:falo|em)\s+portugu[êe]s\b", _F), "pt"),
)
_LANG_NAME = {code: name.title() for name, code in reversed(LANGUAGES.items())}


@triggered(" ".join(LANGUAGES) + " español espanol français francais deutsch português portugues")
def language(s: Sentence) -> list[Finding]:
    """ "Can we continue in Spanish?" -> Prefers to communicate in Spanish (language=es)."""
    code: str | None = None
    confidence = 0.85
    if m := _LANGUAGE.search(s.text):
        code = LANGUAGES[m.group("lang").lower()]
    elif (m := _SPEAK.search(s.text)) and not s.is_question:
        code, confidence = LANGUAGES[m.group("lang").lower()], 0.6
    else:
        code = next((c for pattern, c in _NATIVE if pattern.search(s.text)), None)
    if code is None:
        if _NO_ENGLISH.search(s.text):
            return [
                Finding(
                    "language",
                    K.CONTEXT,
                    "Is not comfortable communicating in English",
                    0.75,
                    "english_proficiency",
                    "limited",
                )
            ]
        return []
    name = _LANG_NAME.get(code, code)
    return [
        Finding(
            "language",
            K.PREFERENCE,
            f"Prefers to communicate in {name}",
            confidence,
            "language",
            code,
            (("language", code),),
        )
    ]


# -- contact times -----------------------------------------------------------------------

_TIME_CUE = re.compile(
    r"\d|\b(?:am|pm|a\.m\.|p\.m\.|noon|midday|midnight|morning|mornings|afternoons?|evenings?|"
    r"nights?|weekends?|weekdays?|lunch(?:time)?|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|work(?:ing)?\s+hours|office\s+hours)\b",
    _F,
)
_POLITE = re.compile(r"\s+(?:please|thanks|thank\s+you|if\s+possible|if\s+you\s+can)$", _F)
_CONTACT_TIME = re.compile(
    r"\b(?:(?P<contact>(?:call|reach|contact|text|ring)\s+me)\s+(?:only\s+)?(?P<w1>(?:after|before|"
    r"between|around|in\s+the|on|during|any\s*time\s+after)\s+[^.,;!?]{2,40})|best\s+time\s+to\s+"
    r"(?:call|reach|contact)(?:\s+me)?\s+is\s+(?P<w2>[^.,;!?]{2,40})|I(?:'m|\s+am)\s+(?:only\s+)?"
    r"(?:available|free|reachable|around)\s+(?P<w3>(?:after|before|between|on|in\s+the|during|"
    r"at)\s+[^.,;!?]{2,40})|I(?:'m|\s+am)\s+(?:not\s+available|unavailable|at\s+work|busy)\s+"
    r"(?P<w4>(?:until|before|between|on|in\s+the|during)\s+[^.,;!?]{2,40}))",
    _F,
)


@triggered("call reach contact text ring available free reachable around busy unavailable best")
def contact_times(s: Sentence) -> list[Finding]:
    """ "Call me after 5pm" -> Best reached after 5 pm (contact_time)."""
    m = _CONTACT_TIME.search(s.text)
    if not m or s.hypothetical:
        return []
    when = next(m.group(g) for g in ("w1", "w2", "w3", "w4") if m.group(g))
    when = re.sub(r"(\d)\s*(am|pm)\b", r"\1 \2", _clean(when), flags=_F)
    when = _POLITE.sub("", when)
    if not _TIME_CUE.search(when):
        return []
    if m.group("w4"):
        return [
            Finding(
                "contact-time",
                K.PREFERENCE,
                f"Not available {when}",
                0.75,
                "unavailable_time",
                when.lower(),
            )
        ]
    return [
        Finding(
            "contact-time",
            K.PREFERENCE,
            f"Best reached {when}",
            0.8,
            "contact_time",
            when.lower(),
            (("contact_time", when),),
        )
    ]


# -- likes and dislikes ------------------------------------------------------------------

_OBJ = r"(?P<obj>(?:the|your|my|this|that|these|those)\s+[^.,;!?]{2,40}?)"
_OBJ_END = (
    r"(?=\s*(?:[.,;!?]|\s(?:because|but|and|so|since|though|anymore|a\s+lot|very|so\s+much)\b|$))"
)
_LIKE_PATTERNS = (
    (
        re.compile(
            rf"{_I}I\s+(?:really\s+|absolutely\s+|just\s+|do\s+)?(?:love|like|enjoy|adore)"
            rf"\s+{_OBJ}{_OBJ_END}",
            _F,
        ),
        "likes",
    ),
    (
        re.compile(
            rf"{_I}I(?:'m|\s+am)\s+(?:really\s+|very\s+|so\s+)?(?:happy|pleased|satisfied|"
            rf"impressed)\s+with\s+{_OBJ}{_OBJ_END}",
            _F,
        ),
        "likes",
    ),
    (
        re.compile(
            rf"{_I}I\s+(?:really\s+|absolutely\s+|just\s+)?(?:hate|dislike|can'?t\s+stand|"
            rf"cannot\s+stand|don'?t\s+like|do\s+not\s+like)\s+{_OBJ}{_OBJ_END}",
            _F,
        ),
        "dislikes",
    ),
    (
        re.compile(
            rf"{_I}I(?:'m|\s+am)\s+(?:really\s+|very\s+|so\s+)?(?:unhappy|not\s+happy|"
            rf"frustrated|annoyed|disappointed|fed\s+up)\s+with\s+{_OBJ}{_OBJ_END}",
            _F,
        ),
        "dislikes",
    ),
)
_PRONOUN_OBJ = re.compile(r"^(?:this|that|these|those)\s+(?:you|we|i|it|they|he|she|is|was)\b", _F)


@triggered(
    "love like enjoy adore happy pleased satisfied impressed hate dislike stand unhappy "
    "frustrated annoyed disappointed fed"
)
def likes(s: Sentence) -> list[Finding]:
    """ "I love the new TV box" -> Likes the new TV box (opinion:new tv box=likes)."""
    if s.hypothetical or s.is_question:
        return []
    for pattern, verdict in _LIKE_PATTERNS:
        m = pattern.search(s.text)
        if not m or _PRONOUN_OBJ.match(m.group("obj")):
            continue
        obj = _clean(m.group("obj"))
        obj = re.sub(r"^(?:this|that|these|those)\s+", "the ", obj, flags=_F)
        key = re.sub(r"^(?:the|their)\s+", "", obj.lower())
        if len(key) < 2:
            continue
        text = f"{'Likes' if verdict == 'likes' else 'Dislikes'} {obj}"
        return [Finding("opinion", K.PREFERENCE, text, 0.75, f"opinion:{key}", verdict)]
    return []


# -- general preferences -----------------------------------------------------------------

_PREFER = re.compile(
    rf"{_I}I(?:'d|\s+would)?\s+(?:really\s+|much\s+|always\s+|generally\s+|usually\s+|"
    rf"definitely\s+|also\s+)?(?P<verb>prefer|rather)\s+(?P<what>[^.;!?]{{3,80}})",
    _F,
)
_NOT_WANT = re.compile(
    rf"{_I}I\s+(?:really\s+|just\s+)?(?:don'?t|do\s+not|no\s+longer)\s+want\s+(?P<what>"
    r"(?:any\s+more\s+|anymore\s+)?(?:the\s+|any\s+|my\s+|your\s+|paper\s+|more\s+|to\s+(?:get|"
    r"receive|be|have|pay|use|keep)\s+)[^.;!?]{2,60})",
    _F,
)
_PRONOUN_START = re.compile(r"^(?:it|that|this|them|one|you|him|her|if|when|not\s+to\s+say)\b", _F)
_TRAILING = re.compile(r"\s+(?:any\s*more|anymore|please|thanks|thank\s+you|though|too)$", _F)


def _qualified(what: str) -> str:
    """ "morning deliveries, before 10am" -> "morning deliveries (before 10 am)"."""
    head, _, qualifier = what.partition(",")
    head = _TRAILING.sub("", _clean(head))
    qualifier = _TRAILING.sub("", _clean(qualifier))
    qualifier = re.sub(r"(\d)\s*(am|pm)\b", r"\1 \2", qualifier, flags=_F)
    if qualifier and len(qualifier.split()) <= 6 and not _PRONOUN_START.match(qualifier):
        return f"{head} ({qualifier})"
    return head


@triggered("prefer rather want")
def preferences(s: Sentence) -> list[Finding]:
    """General first-person preferences, for what no specific rule reads:
    "I prefer morning deliveries, before 10am" -> Prefers morning deliveries (before
    10 am); "I'd rather pick up my order in store" -> Would rather pick up their order
    in store; "I don't want paper invoices anymore" -> Does not want paper invoices.
    Slotless: reconciliation notices a later contradiction (evening deliveries)."""
    if s.is_question or s.hypothetical:
        return []
    if m := _PREFER.search(s.text):
        what = m.group("what").strip()
        if _PRONOUN_START.match(what) or len(what.split()) > 14:
            return []
        what = _qualified(what)
        if len(what) < 3:
            return []
        text = f"Prefers {what}" if m.group("verb").lower() == "prefer" else f"Would rather {what}"
        return [Finding("preference", K.PREFERENCE, text, 0.7)]
    if m := _NOT_WANT.search(s.text):
        what = re.sub(r"^(?:any\s*more|anymore)\s+", "", m.group("what").strip(), flags=_F)
        if re.match(r"^to\s+(?:be\s+)?(?:a\s+)?(?:bother|trouble|rude|waste)", what, _F):
            return []
        what = _qualified(what)
        return [Finding("preference", K.PREFERENCE, f"Does not want {what}", 0.7)]
    return []
