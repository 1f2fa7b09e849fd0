"""The heuristic extractor: the default when no LLM is configured.

It runs the rules of :mod:`memory_core.extraction.rules`,
:mod:`~memory_core.extraction.rules_contact` and
:mod:`~memory_core.extraction.rules_account` over the customer's messages only
(an agent saying "you're on the Premium plan" is not taken as a customer
fact), merges what a conversation says twice into one proposal with both
messages as evidence, and writes an extractive summary: the customer's first
substantive request, the agent's last resolution line, and an outcome read
from cue words.

What it does not do: understand paraphrase beyond its patterns, negation
("I don't live in Boston any more" yields nothing rather than a wrong fact),
coreference ("it", "there"), or facts stated by someone other than the
customer. It is fast (thousands of messages per second on one core) and
deterministic, so re-running it never changes what it found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from memory_core.extraction.base import (
    CUSTOMER_ROLES,
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.extraction.rules import (
    Finding,
    Sentence,
    channel_preferences,
    contact_times,
    language,
    likes,
    preferences,
)
from memory_core.extraction.rules_account import (
    account_events,
    dated_event,
    intents,
    life_context,
    plan,
)
from memory_core.extraction.rules_contact import contact_details, location
from memory_core.models import Message, Outcome, Role

__all__ = ["HeuristicExtractor", "extractive_summary", "split_clauses", "split_sentences"]

Rule = Callable[[Sentence], list[Finding]]

MESSAGE_RULES: tuple[Rule, ...] = (channel_preferences,)
"""Rules that read a whole message (a preference and its contrast span sentences)."""
SENTENCE_RULES: tuple[Rule, ...] = (
    language,
    contact_times,
    likes,
    contact_details,
    location,
    plan,
    account_events,
    intents,
    life_context,
)
"""Rules that read one sentence at a time."""
FALLBACK_RULES: tuple[Rule, ...] = (preferences, dated_event)
"""Rules for clauses no specific rule matched; the first that finds something wins."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z0-9¿¡])|\n+")
_QUESTION_CLAUSE = re.compile(
    r"\s*(?:,|;|\s-|\s–|\s—)\s+(?=(?:so\s+|and\s+|but\s+)?(?:does|do|did|is|are|was|were|can|"
    r"could|will|would|should|shall|may|might|what|when|why|how|where|who|which|isn't|aren't|"
    r"doesn't|don't|won't|can't)\b[^,;]*\?\s*$)",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """Sentences of a chat message (newlines end sentences too)."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def split_clauses(sentence: str) -> list[str]:
    """A sentence that states something and then asks, as two clauses: "I upgraded to
    Gold yesterday, does the discount work now?" -> the statement (ended with a full
    stop, so rules that skip questions read it) and the question. A sentence that is
    a question from its start stays whole."""
    m = _QUESTION_CLAUSE.search(sentence)
    if not m or m.start() == 0:
        return [sentence]
    head = sentence[: m.start()].rstrip(" ,;-–—")
    first = head.split(maxsplit=1)[0].lower() if head.split() else ""
    if not head or first in _QUESTION_OPENERS:
        return [sentence]
    return [head + ".", sentence[m.end() :].strip()]


_QUESTION_OPENERS = frozenset(
    [
        "does",
        "do",
        "did",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "will",
        "would",
        "should",
        "shall",
        "may",
        "might",
        "what",
        "when",
        "why",
        "how",
        "where",
        "who",
        "which",
    ]
)


class HeuristicExtractor:
    """Rule-based extraction; see the module docstring for what it can and cannot do.

    ``default_region`` reads phone numbers the customer gives without a country code.
    """

    name = "heuristic-1"

    def __init__(self, *, default_region: str = "US") -> None:
        self.default_region = default_region

    def __repr__(self) -> str:
        return f"HeuristicExtractor(name={self.name!r})"

    def findings(self, message: Message) -> list[Finding]:
        """What the rules find in one customer message, clause by clause. A leading
        "<author>:" (a transcript's speaker label) is not part of what was said."""
        text = message.text
        if message.author and text.startswith(f"{message.author}:"):
            text = text[len(message.author) + 1 :].lstrip()
        whole = Sentence(text, message.ts, self.default_region)
        found = [f for rule in MESSAGE_RULES for f in rule(whole)]
        for sentence_text in split_sentences(text):
            for clause in split_clauses(sentence_text):
                sentence = Sentence(clause, message.ts, self.default_region)
                specific = [f for rule in SENTENCE_RULES for f in rule(sentence)]
                if not specific and not any(f.rule == "channel" for f in found):
                    for rule in FALLBACK_RULES:
                        if specific := rule(sentence):
                            break
                found += specific
        return found

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        proposals: dict[tuple[str, str], ProposedObservation] = {}
        traits: dict[str, TraitUpdate] = {}
        for message in data.messages:
            if message.role not in CUSTOMER_ROLES:
                continue
            for f in self.findings(message):
                key = (f.trait_key, f.value) if f.trait_key else ("text", f.text.lower())
                assert key[1] is not None
                slot = (key[0], key[1])
                known = proposals.get(slot)
                if known is not None:  # said twice in one conversation: one proposal
                    proposals[slot] = known.model_copy(
                        update={
                            "evidence": tuple(dict.fromkeys((*known.evidence, message.id))),
                            "confidence": max(known.confidence, f.confidence),
                        }
                    )
                    continue
                proposals[slot] = ProposedObservation(
                    kind=f.kind,
                    text=f.text,
                    confidence=f.confidence,
                    evidence=(message.id,),
                    trait_key=f.trait_key,
                    value=f.value,
                    note=f"rule:{f.rule}",
                )
                for trait_key, value in f.traits:
                    traits[trait_key] = TraitUpdate(
                        key=trait_key, value=value, confidence=f.confidence, evidence=(message.id,)
                    )
        return ExtractionOutput(
            observations=list(proposals.values()),
            traits=list(traits.values()),
            summary=extractive_summary(data.messages),
        )


# -- extractive summary -----------------------------------------------------------------

_AGENTS = frozenset({Role.HUMAN_AGENT, Role.AI_AGENT})
_SMALL_TALK = re.compile(
    r"^(?:(?:hi|hello|hey|good\s+(?:morning|afternoon|evening)|thanks?(?:\s+you)?|thank\s+you|"
    r"ok(?:ay)?|yes|yeah|yep|no|nope|sure|great|perfect|cool|bye|goodbye|cheers|alright|"
    r"that'?s\s+(?:all|it)|you\s+too|have\s+a\s+(?:good|nice|great)\s+\w+)[\s,.!?]*)+$",
    re.IGNORECASE,
)
_RESOLVED = re.compile(
    r"\b(?:I'?ve|I\s+have|we'?ve|we\s+have|has\s+been|have\s+been|is\s+now|are\s+now|all\s+set|"
    r"went\s+through|done)\b.{0,40}?\b(?:refunded|issued|credited|updated|changed|fixed|reset|"
    r"cancell?ed|resolved|sent|scheduled|applied|processed|restored|replaced|removed|reversed|"
    r"waived|activated|upgraded|downgraded|set|booked|unlocked)\b|\b(?:that\s+(?:worked|fixed|did)"
    r"|it\s+works|works\s+now|problem\s+solved|all\s+good\s+now|sorted)\b|"
    r"\b(?:I'll|I\s+will|we'll|we\s+will|I'm|I\s+am|we're|we\s+are)\s+(?:now\s+|also\s+)?"
    r"(?:refund|credit|fix|send|replac|cancel|waiv|revers|process|issu|schedul)\w*\b",
    re.IGNORECASE,
)
_ESCALATED = re.compile(
    r"\b(?:escalat\w*|transfer(?:ring|red)?\s+you|supervisor|manager\s+will|specialist\s+will|"
    r"(?:raised|opened|created)\s+a\s+(?:ticket|case)|ticket\s+(?:number|#)|case\s+number|"
    r"technician\s+(?:will|visit))",
    re.IGNORECASE,
)
_UNRESOLVED = re.compile(
    r"\b(?:still\s+(?:not|doesn'?t|isn'?t|broken|waiting|no)|doesn'?t\s+work|didn'?t\s+(?:work|help)"
    r"|not\s+(?:resolved|fixed|helpful)|unacceptable|ridiculous|waste\s+of\s+time|"
    r"(?:unable|not\s+able)\s+to\s+(?:help|do|process)|can'?t\s+(?:help|do\s+that)|"
    r"nothing\s+(?:I|we)\s+can\s+do|I'?ll\s+(?:go|take\s+my\s+business)\s+elsewhere)\b",
    re.IGNORECASE,
)


def _substantive(message: Message) -> bool:
    text = message.text.strip()
    return len(text.split()) >= 3 and not _SMALL_TALK.match(text)


def _clip(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    sentences = split_sentences(text)
    first = sentences[0] if sentences else text
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def outcome(messages: Sequence[Message]) -> Outcome:
    """Escalated > unresolved (the customer's last word is negative) > resolved > unknown."""
    agents = [m for m in messages if m.role in _AGENTS]
    customers = [m for m in messages if m.role in CUSTOMER_ROLES]
    if any(_ESCALATED.search(m.text) for m in agents):
        return Outcome.ESCALATED
    tail = customers[-2:]
    if any(_UNRESOLVED.search(m.text) for m in tail) or (
        agents and _UNRESOLVED.search(agents[-1].text)
    ):
        return Outcome.UNRESOLVED
    if any(_RESOLVED.search(m.text) for m in (*agents[-3:], *tail)):
        return Outcome.RESOLVED
    return Outcome.UNKNOWN


def extractive_summary(messages: Sequence[Message]) -> ProposedSummary | None:
    """The customer's first substantive request, the agent's last resolution line
    (or last substantive reply), and the outcome. None for a one-message conversation:
    the message itself says all there is."""
    if len(messages) < 2:
        return None
    request = next(
        (m for m in messages if m.role in CUSTOMER_ROLES and _substantive(m)),
        next((m for m in messages if m.role in CUSTOMER_ROLES), None),
    )
    agents = [m for m in messages if m.role in _AGENTS and _substantive(m)]
    reply = next((m for m in reversed(agents) if _RESOLVED.search(m.text)), None)
    reply = reply or next((m for m in reversed(agents) if _ESCALATED.search(m.text)), None)
    reply = reply or (agents[-1] if agents else None)
    result = outcome(messages)
    parts: list[str] = []
    evidence: list[str] = []
    if request is not None:
        parts.append(f"Customer: {_clip(request.text)}")
        evidence.append(request.id)
    if reply is not None and (request is None or reply.seq > request.seq):
        parts.append(f"Agent: {_clip(reply.text)}")
        evidence.append(reply.id)
    if not parts:
        return None
    parts.append(f"Outcome: {result.value}.")
    return ProposedSummary(text=" | ".join(parts), outcome=result, evidence=tuple(evidence))
