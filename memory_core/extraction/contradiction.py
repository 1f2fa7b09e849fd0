"""Does a new statement contradict a known one? An offline check, no model.

Observations are short subjectless statements ("Prefers morning calls", "Doesn't
want paper invoices", "Switched to Android"). :func:`relation` reads two of them
into a :class:`Reading` each -- polarity, a change marker, and content words
(crudely stemmed; synonyms and members of *value classes* folded into one token
each) -- and answers ``same``, ``contradiction`` or ``compatible``:

- **opposite polarity about the same thing**: one side negated ("not", "no
  longer", "never") or holding an opposite verb ("dislikes", "unhappy",
  "unsubscribed", "turned off", "quit", "replaced X with"), and their objects
  overlap ("Wants paper invoices" / "Doesn't want paper invoices");
- **another value of the same thing**: the two differ by two members of one
  exclusive value class (time of day, weekday/weekend, frequency, contact
  channel, language, payment method, phone platform, paper/electronic, home/office,
  keep/cancel, on/off ...) and either share what the value qualifies ("morning
  *calls*" / "evening *calls*"), or the newer one says it changed ("switched
  to", "now"), or both consist of the values alone ("Pays by credit card" /
  "Pays by direct debit").

Everything else is ``compatible`` -- so are two statements that both carry numbers
and not the same ones (dated plans or events: "Will visit the store on 14 May" /
"Will not visit the store on 20 May" are two facts); ``same`` means the same
content words with the same polarity. The value classes are a small lexicon of things a customer has
one of at a time; statements outside it ("Is vegetarian" / "Started eating meat
again") are left to an LLM (:class:`~memory_core.extraction.reconcile.LLMReconciler`).

:func:`memory_core.extraction.pairs.evaluate_pairs` scores a reconciler on
labelled pairs (``python scripts/eval_contradictions.py`` prints the figures).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = ["Reading", "Relation", "read_statement", "relation"]

# -- lexicon -------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"),
    (re.compile(r"\bany\s+more\b"), "anymore"),
    (re.compile(r"\bno\s+longer\b"), "nolonger"),
    (re.compile(r"\be-(mail|invoice|bill)"), r"e\1"),
)
_NEGATIONS = frozenset({"not", "no", "never", "nolonger", "none", "nothing", "neither", "nor"})
_CHANGE = frozenset(
    {"now", "switched", "switch", "changed", "moved", "replaced", "started", "stopped", "quit",
     "nolonger", "anymore", "again", "became", "become", "converted", "upgraded", "downgraded",
     "instead", "turned", "opted", "unsubscribed", "cancelled", "canceled", "disabled", "enabled"}
)  # fmt: skip
#: Words whose presence flips the polarity of the statement about its object.
_NEGATIVE = frozenset(
    {"dislike", "dislikes", "disliked", "hate", "hates", "hated", "loathe", "loathes", "detest",
     "detests", "unhappy", "dissatisfied", "unsatisfied", "frustrated", "annoyed", "disappointed",
     "upset", "complain", "complains", "complained", "distrust", "distrusts", "mistrust",
     "mistrusts", "uninterested", "disinterested", "unsubscribed", "unsubscribe", "disabled",
     "disable", "quit", "quits", "stopped", "stop", "stops", "opted_out", "turned_off",
     "switched_off", "cancelled", "canceled", "cancel", "cancels", "removed", "left", "leave",
     "declined", "declines", "refused", "refuses", "rejected", "dropped", "gave_up", "sold"}
)  # fmt: skip
#: Value classes: a customer holds one member of each at a time. Tokens and
#: phrases (underscored) map to ``class:value``; synonyms share a value.
_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "daytime": {
        "morning": ("morning", "mornings", "am"),
        "afternoon": ("afternoon", "afternoons", "midday", "lunchtime"),
        "evening": ("evening", "evenings", "pm", "night", "nights", "nighttime", "overnight"),
    },
    "week": {
        "weekday": ("weekday", "weekdays", "workday", "workdays"),
        "weekend": ("weekend", "weekends", "saturday", "saturdays", "sunday", "sundays"),
    },
    "frequency": {
        "day": ("daily", "everyday"),
        "week": ("weekly",),
        "month": ("monthly",),
        "quarter": ("quarterly",),
        "year": ("annual", "annually", "yearly"),
    },
    "channel": {
        "sms": ("sms", "text", "texts", "texted", "texting", "txt"),
        "voice": ("phone", "phoned", "call", "calls", "called", "calling", "ring", "rang"),
        "email": ("email", "emails", "emailed", "emailing"),
        "whatsapp": ("whatsapp",),
        "post": ("post", "letter", "letters", "postal"),
        "chat": ("chat", "live_chat"),
    },
    "payment": {
        "credit_card": ("credit_card", "credit_cards"),
        "debit_card": ("debit_card", "debit_cards"),
        "direct_debit": ("direct_debit", "standing_order"),
        "paypal": ("paypal",),
        "bank_transfer": ("bank_transfer", "wire_transfer"),
        "cash": ("cash",),
        "cheque": ("cheque", "cheques", "check_payment"),
        "apple_pay": ("apple_pay",),
        "google_pay": ("google_pay",),
    },
    "platform": {
        "ios": ("iphone", "ios"),
        "android": ("android", "pixel", "galaxy"),
        "windows": ("windows",),
        "mac": ("mac", "macbook", "macos"),
        "linux": ("linux",),
    },
    "medium": {
        "paper": ("paper", "printed", "hard_copy"),
        "electronic": (
            "electronic",
            "digital",
            "paperless",
            "pdf",
            "einvoice",
            "einvoices",
            "ebill",
        ),  # fmt: skip
    },
    "place": {
        "home": ("home", "house"),
        "office": ("office", "work_address", "workplace"),
        "store": ("store", "stores", "shop_in_person", "in_person", "branch"),
        "online": ("online", "website", "web"),
    },
    "household": {
        "alone": ("alone", "single"),
        "together": (
            "partner",
            "spouse",
            "wife",
            "husband",
            "family",
            "roommate",
            "roommates",
            "parents",
            "boyfriend",
            "girlfriend",
        ),
    },  # fmt: skip
    "keep": {
        "keep": ("keep", "keeps", "stay", "stays", "renew", "continue"),
        "cancel": ("cancel", "cancels", "cancelled", "canceled", "terminate", "close"),
    },
    "switch": {
        "on": ("on", "enabled", "turned_on", "switched_on", "active", "activated"),
        "off": ("off", "disabled", "turned_off", "switched_off", "inactive", "deactivated"),
    },
}
_LANGUAGE_NAMES = _words(
    "english spanish french german portuguese italian mandarin chinese cantonese japanese "
    "korean vietnamese arabic hindi russian polish tagalog dutch turkish ukrainian greek "
    "hebrew bengali urdu punjabi farsi persian swahili somali"
)
_CLASSES["language"] = {name: (name,) for name in _LANGUAGE_NAMES}
_PHRASES = re.compile(
    r"\b(?:credit|debit)\s+cards?\b|\bdirect\s+debit\b|\bstanding\s+order\b|\bapple\s+pay\b|"
    r"\bgoogle\s+pay\b|\b(?:bank|wire)\s+transfer\b|\bhard\s+copy\b|\blive\s+chat\b|"
    r"\bin\s+person\b|\bwork\s+address\b|\b(?:turned|switched|turn|switch)\s+(?:on|off)\b|"
    r"\bopted\s+out\b|\bopt\s+out\b|\bgave\s+up\b"
)
_TOKEN_CLASS: dict[str, str] = {
    token: f"{cls}:{value}"
    for cls, values in _CLASSES.items()
    for value, tokens in values.items()
    for token in tokens
}
# "on" and "off" as class members only inside the phrases above: a bare "on" is a
# preposition ("on the Gold plan").
for _bare in ("on", "off", "am", "pm", "post", "close", "web", "single", "active"):
    _TOKEN_CLASS.pop(_bare, None)
_TOKEN_CLASS.update(
    {"opted_out": "switch:off", "opt_out": "switch:off", "gave_up": "keep:cancel"}
)  # fmt: skip
#: Words that carry no content of their own for comparing statements.
_STOP = _words(
    """a an the their his her its my our your to of and or is are was were be been being by
    on in at for with from as that this these those it they them he she customer user who
    which than over rather would should could will can does do did has have had also really
    very just still currently usually always often generally mostly only prefers prefer
    preferred much more most some any all every each there here about into onto via per
    so too then when while if now anymore again instead own owns owned use uses used using
    get gets got receive receives received"""
)
#: Words that only say how the customer feels about something positive; with the
#: negatives above they define polarity, not content.
_STANCE = _words(
    """like likes liked love loves loved enjoy enjoys enjoyed adore adores appreciate
    appreciates happy satisfied pleased content impressed trust trusts trusted interested
    want wants wanted wish wishes need needs keen fond agree agrees agreed accept accepts
    accepted"""
)
_SUFFIXES = ("ings", "ing", "ers", "er", "ied", "ies", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if suffix in ("ied", "ies"):
                stem += "y"
            return stem
    return word


@dataclass(frozen=True)
class Reading:
    """What the check reads in one statement."""

    text: str
    #: +1, or -1 when negated or holding an opposite verb (an odd number of them).
    polarity: int
    #: Says something changed ("switched to", "now", "no longer").
    change: bool
    #: Content words, stemmed, with value-class members as ``class:value``.
    content: frozenset[str]
    #: The verbs/adjectives of stance and polarity (for the record, not compared).
    stance: frozenset[str] = frozenset()

    @property
    def values(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for token in self.content:
            if ":" in token:
                cls, value = token.split(":", 1)
                out.setdefault(cls, set()).add(value)
        return out

    @property
    def plain(self) -> frozenset[str]:
        """Content words that are not value-class members."""
        return frozenset(t for t in self.content if ":" not in t)


@lru_cache(maxsize=4096)
def read_statement(text: str) -> Reading:
    """Read a short statement (see the module docstring)."""
    low = text.casefold().replace("’", "'")
    for pattern, replacement in _CONTRACTIONS:
        low = pattern.sub(replacement, low)
    low = _PHRASES.sub(lambda m: "_".join(m.group().split()), low)
    # "replaced X with Y": the statement is against X (Y is new content)
    low = re.sub(r"\breplaced\b", "replaced removed", low)
    words = re.findall(r"[a-z0-9_]+", low)
    polarity = 1
    change = False
    content: set[str] = set()
    stance: set[str] = set()
    for w in words:
        if w in _NEGATIONS:
            polarity = -polarity
            change = change or w == "nolonger"
            continue
        if w in _CHANGE or w in ("turned_off", "turned_on", "opted_out", "switched_off"):
            change = True
        if w in _NEGATIVE:
            polarity = -polarity
            stance.add(w)
            if w not in _TOKEN_CLASS:
                continue
        if w in _STANCE:
            stance.add(w)
            continue
        if w in _TOKEN_CLASS:
            content.add(_TOKEN_CLASS[w])
            continue
        if w in _STOP or w in _CHANGE:
            continue
        stemmed = _stem(w)
        content.add(_TOKEN_CLASS.get(stemmed, stemmed))
    return Reading(text, polarity, change, frozenset(content), frozenset(stance))


@dataclass(frozen=True)
class Relation:
    """How a new statement relates to a known one, and why."""

    kind: Literal["same", "contradiction", "compatible"]
    why: str = ""


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of the smaller side found in the other (0 when either is empty)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


_POLAR_CLASSES = ("keep:", "switch:")


def _about(r: Reading) -> frozenset[str]:
    """What a statement is about: its content without the classes that only restate
    its polarity (keep/cancel, on/off)."""
    return frozenset(t for t in r.content if not t.startswith(_POLAR_CLASSES))


def relation(old: str, new: str) -> Relation:
    """``same``, ``contradiction`` or ``compatible`` (see the module docstring)."""
    a, b = read_statement(old), read_statement(new)
    if a.content == b.content and a.polarity == b.polarity:
        return Relation("same", "same content words")
    if not a.content or not b.content:
        return Relation("compatible", "nothing to compare")
    numbers_a, numbers_b = re.findall(r"\d+", old), re.findall(r"\d+", new)
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return Relation("compatible", "different dates or numbers: two facts")
    if a.polarity != b.polarity and _overlap(_about(a), _about(b)) >= 1.0:
        side = "the new statement" if b.polarity < 0 else "the known statement"
        return Relation("contradiction", f"{side} negates or reverses the same thing")
    a_values, b_values = a.values, b.values
    for cls in sorted(set(a_values) & set(b_values)):
        only_a, only_b = a_values[cls] - b_values[cls], b_values[cls] - a_values[cls]
        if not only_a or not only_b or a.polarity != b.polarity:
            continue
        prefix = f"{cls}:"
        shared = {t for t in a.content & b.content if not t.startswith(prefix)}
        values_only = all(t.startswith(prefix) for t in a.content | b.content)
        if shared or b.change or values_only:
            was, now = sorted(only_a)[0], sorted(only_b)[0]
            return Relation("contradiction", f"another {cls} value: {was} -> {now}")
    return Relation("compatible", "different content")
