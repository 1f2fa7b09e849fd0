"""Topics never to remember: keyword lexicons for special categories of data.

The lexicons are **English only** and deliberately conservative: each term is a
word or phrase that on its own signals the topic in a customer conversation
("diagnosed", "chemotherapy", "synagogue", "trade union"). Ambiguous words
("black", "race", "union" alone, "pride") are left out, so some mentions are
missed; add terms per tenant with ``remember.topic_terms`` in the policy.
Matching is case-insensitive on word boundaries, with an optional plural "s".

The categories follow GDPR article 9 (and article 10 for criminal records).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

__all__ = ["SPECIAL_CATEGORIES", "TOPIC_LEXICONS", "TopicMatcher"]

TOPIC_LEXICONS: dict[str, tuple[str, ...]] = {
    "health": (
        "health condition",
        "medical condition",
        "diagnosed",
        "diagnosis",
        "illness",
        "disease",
        "disorder",
        "chronic pain",
        "diabetes",
        "diabetic",
        "cancer",
        "tumour",
        "tumor",
        "chemotherapy",
        "chemo",
        "radiotherapy",
        "hiv",
        "hepatitis",
        "asthma",
        "epilepsy",
        "epileptic",
        "dementia",
        "alzheimer",
        "alzheimer's",
        "parkinson",
        "parkinson's",
        "heart attack",
        "heart condition",
        "depression",
        "depressed",
        "anxiety disorder",
        "bipolar",
        "schizophrenia",
        "ptsd",
        "adhd",
        "autism",
        "autistic",
        "mental health",
        "psychiatrist",
        "therapist",
        "therapy",
        "rehab",
        "addiction",
        "alcoholism",
        "overdose",
        "pregnant",
        "pregnancy",
        "miscarriage",
        "ivf",
        "fertility treatment",
        "abortion",
        "surgery",
        "hospitalised",
        "hospitalized",
        "hospital stay",
        "in hospital",
        "icu",
        "medication",
        "prescription",
        "prescribed",
        "antidepressant",
        "insulin",
        "wheelchair",
        "disability",
        "disabled",
        "deaf",
        "hearing impaired",
        "visually impaired",
        "covid",
        "long covid",
    ),
    "religion": (
        "religion",
        "religious",
        "christian",
        "christianity",
        "catholic",
        "protestant",
        "evangelical",
        "mormon",
        "jehovah's witness",
        "muslim",
        "islam",
        "islamic",
        "jewish",
        "judaism",
        "hindu",
        "hinduism",
        "buddhist",
        "buddhism",
        "sikh",
        "sikhism",
        "atheist",
        "agnostic",
        "church",
        "mosque",
        "synagogue",
        "gurdwara",
        "ramadan",
        "passover",
        "yom kippur",
        "diwali",
        "eid",
        "kosher",
        "halal",
        "sabbath",
        "prayer",
        "pray",
        "bible",
        "quran",
        "koran",
        "torah",
    ),
    "politics": (
        "political",
        "politics",
        "democrat",
        "democratic party",
        "republican",
        "republican party",
        "labour party",
        "conservative party",
        "tory",
        "liberal democrat",
        "green party",
        "socialist",
        "communist",
        "libertarian",
        "voted for",
        "vote for",
        "election",
        "campaign donation",
        "political party",
        "activist",
        "protest march",
    ),
    "sexual_orientation": (
        "sexual orientation",
        "gay",
        "lesbian",
        "bisexual",
        "homosexual",
        "heterosexual",
        "queer",
        "lgbt",
        "lgbtq",
        "lgbtqia",
        "transgender",
        "trans woman",
        "trans man",
        "non-binary",
        "nonbinary",
        "same-sex",
        "coming out",
        "sex life",
    ),
    "ethnicity": (
        "ethnicity",
        "ethnic",
        "ethnic origin",
        "racial",
        "racial origin",
        "african american",
        "hispanic",
        "latino",
        "latina",
        "latinx",
        "caucasian",
        "native american",
        "indigenous",
        "aboriginal",
        "first nations",
        "asian american",
        "pacific islander",
    ),
    "trade_union": (
        "trade union",
        "labor union",
        "labour union",
        "union member",
        "union membership",
        "union dues",
        "union rep",
        "shop steward",
        "unionised",
        "unionized",
        "collective bargaining",
    ),
    "biometrics": (
        "biometric",
        "biometrics",
        "fingerprint",
        "fingerprints",
        "face scan",
        "facial recognition",
        "retina scan",
        "iris scan",
        "voiceprint",
        "palm print",
    ),
    "genetics": (
        "genetic",
        "genetics",
        "dna",
        "dna test",
        "genome",
        "genetic test",
        "brca",
        "hereditary condition",
    ),
    "criminal_record": (
        "criminal record",
        "convicted",
        "conviction",
        "felony",
        "misdemeanor",
        "misdemeanour",
        "arrested",
        "on parole",
        "on probation",
        "jail",
        "prison",
        "incarcerated",
        "sex offender",
    ),
}
"""Terms per topic (English)."""

SPECIAL_CATEGORIES: tuple[str, ...] = tuple(TOPIC_LEXICONS)
"""Every built-in topic: the default ``remember.deny_topics``."""


@lru_cache(maxsize=256)
def _compile(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(
        re.escape(term).replace(r"\ ", r"[\s-]+")
        for term in sorted(set(terms), key=len, reverse=True)
    )
    return re.compile(rf"(?<![\w'])(?:{alternatives})s?(?![\w'])", re.IGNORECASE)


class TopicMatcher:
    """Finds which of some topics a text mentions."""

    __slots__ = ("_patterns",)

    def __init__(
        self, topics: Iterable[str], extra_terms: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        extra = extra_terms or {}
        patterns: list[tuple[str, re.Pattern[str]]] = []
        for topic in dict.fromkeys(topics):
            terms = (*TOPIC_LEXICONS.get(topic, ()), *extra.get(topic, ()))
            terms = tuple(t.strip().lower() for t in terms if t.strip())
            if terms:
                patterns.append((topic, _compile(terms)))
        self._patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def topics(self, text: str) -> list[str]:
        """The topics ``text`` mentions, in the order they were configured."""
        return [topic for topic, pattern in self._patterns if pattern.search(text)]

    def mentions_any(self, text: str) -> bool:
        return any(pattern.search(text) for _, pattern in self._patterns)
