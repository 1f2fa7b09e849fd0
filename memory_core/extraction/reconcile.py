"""Reconciliation: deciding what a proposed observation does to what is known.

Every proposal first meets the policy (:func:`policy_violation`): it must cite
customer messages of the conversation, be confident enough, and carry no
payment card number or secret. Then a :class:`Reconciler` compares it with
its candidates -- the profile's active observations in the same slot
(``trait_key``) and the nearest by meaning -- and returns a :class:`Verdict`:

- ``ADD``: new;
- ``UPDATE``: supersedes the candidate (a new value in the same slot: Boston -> Denver);
- ``DUPLICATE``: the candidate already says it; the evidence is merged;
- ``DISCARD``: dropped.

:class:`RuleReconciler` decides by slot and value; then by the offline
contradiction check (:mod:`memory_core.extraction.contradiction`: negation, an
opposite verb, another value of the same thing), which turns a slotless
conflict into an UPDATE; then by wording (the same content words with the same
polarity, and near-identical meaning or nearly the same words, with the same
numbers). A high similarity alone never makes a DUPLICATE. :class:`LLMReconciler`
lets an LLM judge the close pairs that are not settled by a slot or by identical
words, and records its reason. It falls back to the rules whenever the model
fails or answers out of bounds.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import ValidationError as PydanticValidationError

from memory_core.errors import ModelError
from memory_core.extraction.base import CUSTOMER_ROLES, ProposedObservation
from memory_core.extraction.contradiction import relation
from memory_core.extraction.llm import LLMClient
from memory_core.extraction.prompts import ReconcileItem, ReconcileReply, reconcile_prompt
from memory_core.models import Decision, Message, Observation, ObservationKind, Usage

__all__ = [
    "Candidate",
    "LLMReconciler",
    "Reconciler",
    "RuleReconciler",
    "Verdict",
    "normalise_text",
    "policy_violation",
    "same_value",
    "sensitive",
]

log = logging.getLogger("memory_core.extraction")


@dataclass(frozen=True)
class Candidate:
    """An existing observation a proposal is compared with; ``similarity`` is the
    cosine of their embeddings (1.0 for a slot match found without search)."""

    observation: Observation
    similarity: float


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    target: Observation | None = None
    reason: str = ""
    #: Which rule decided: ``slot``, ``exact`` (the same words), ``contradiction``,
    #: ``wording`` (the same content words), ``new``; ``llm`` for a model's judgement.
    rule: str = ""


@runtime_checkable
class Reconciler(Protocol):
    name: str

    def decide(
        self, proposal: ProposedObservation, candidates: Sequence[Candidate]
    ) -> tuple[Verdict, Usage]:
        """The fate of ``proposal`` given its candidates, and what deciding cost."""
        ...


# -- policy ------------------------------------------------------------------------

_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")
_SECRET = re.compile(
    r"\b(?:password|passcode|pin(?:\s+code)?|security\s+code|cvv|cvc|ssn|social\s+security"
    r"(?:\s+number)?)\s*(?:is|was|:|=)\s*\S+",
    re.IGNORECASE,
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def sensitive(text: str) -> str | None:
    """Why ``text`` must not be remembered (a card number, a secret), or None."""
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "contains a payment card number"
    if _SECRET.search(text) or _SSN.search(text):
        return "contains a password, PIN or social security number"
    return None


def policy_violation(
    proposal: ProposedObservation, messages: Sequence[Message], *, min_confidence: float
) -> str | None:
    """Why ``proposal`` is discarded before reconciliation, or None if it may proceed.
    ``messages`` are those of the conversation it was drawn from."""
    if proposal.confidence < min_confidence:
        return f"confidence {proposal.confidence:.2f} is below {min_confidence:.2f}"
    by_id = {m.id: m for m in messages}
    cited = [by_id[i] for i in proposal.evidence if i in by_id]
    if not cited:
        return "cites no message of this conversation"
    if not any(m.role in CUSTOMER_ROLES for m in cited):
        return "cites no customer message: agents' words are not customer facts"
    return sensitive(proposal.text)


# -- comparing ---------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+")
_FILLER = frozenset({"a", "an", "the", "their", "to", "of", "and", "is", "be", "by", "on", "in"})


def normalise_text(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def _tokens(text: str) -> set[str]:
    return {t for t in _WORD.findall(text.casefold()) if t not in _FILLER}


def same_value(a: str | None, b: str | None) -> bool:
    """Slot values that mean the same: equal ignoring case and punctuation, or one
    the other plus a qualifier after a comma ("Denver" / "Denver, CO")."""
    if a is None or b is None:
        return a is b
    na, nb = normalise_text(a), normalise_text(b)
    if na == nb:
        return True
    ha, hb = normalise_text(a.split(",")[0]), normalise_text(b.split(",")[0])
    return ha == hb and ("," in a) != ("," in b)


def same_wording(a: str, b: str, similarity: float, threshold: float) -> bool:
    """The same statement: equal words, or the same content words with the same
    polarity (see :func:`~memory_core.extraction.contradiction.relation`) and
    either near-identical meaning or nearly the same words, with the same numbers
    (so "Called on 7 May" and "Called on 8 May" stay two events). A high
    similarity alone never merges "Prefers morning calls" into "Prefers evening
    calls", nor "Wants paper invoices" into "Doesn't want paper invoices"."""
    if normalise_text(a) == normalise_text(b):
        return True
    if _NUMBER.findall(a) != _NUMBER.findall(b):
        return False
    if relation(b, a).kind != "same":
        return False
    ta, tb = _tokens(a), _tokens(b)
    overlap = len(ta & tb) / max(1, len(ta | tb))
    return overlap >= 0.8 or similarity >= threshold


#: Kinds that hold a state which a newer statement can contradict; events and
#: complaints happened and stay (two calls on two days are two facts).
STATE_KINDS = frozenset(
    {
        ObservationKind.PREFERENCE,
        ObservationKind.BEHAVIOUR,
        ObservationKind.CONTEXT,
        ObservationKind.FACT,
        ObservationKind.INTENT,
    }
)


class RuleReconciler:
    """Slot, contradiction and wording rules; see the module docstring."""

    name = "rules-2"

    def __init__(self, *, duplicate_similarity: float = 0.9) -> None:
        self.duplicate_similarity = duplicate_similarity

    def decide(
        self, proposal: ProposedObservation, candidates: Sequence[Candidate]
    ) -> tuple[Verdict, Usage]:
        return self.verdict(proposal, candidates), Usage()

    def verdict(self, p: ProposedObservation, candidates: Sequence[Candidate]) -> Verdict:
        if p.trait_key:
            slot = [c.observation for c in candidates if c.observation.trait_key == p.trait_key]
            for o in slot:
                if same_value(o.value, p.value) and (p.value is not None or o.text == p.text):
                    return Verdict(Decision.DUPLICATE, o, f"same {p.trait_key}", rule="slot")
            if slot:
                newest = max(slot, key=lambda o: o.valid_from)
                why = f"new {p.trait_key}: {p.value}"
                return Verdict(Decision.UPDATE, newest, why, rule="slot")
        comparable = [
            c
            for c in sorted(candidates, key=lambda c: -c.similarity)
            if c.observation.trait_key in (None, p.trait_key)
        ]
        text = normalise_text(p.text)
        for c in comparable:
            if normalise_text(c.observation.text) == text:
                return Verdict(Decision.DUPLICATE, c.observation, "same statement", rule="exact")
        if p.kind in STATE_KINDS:
            for c in comparable:
                o = c.observation
                if o.kind not in STATE_KINDS:
                    continue
                found = relation(o.text, p.text)
                if found.kind == "contradiction":
                    return Verdict(
                        Decision.UPDATE,
                        o,
                        f"contradicts {o.text!r}: {found.why}",
                        rule="contradiction",
                    )
        for c in comparable:
            o = c.observation
            if same_wording(p.text, o.text, c.similarity, self.duplicate_similarity):
                return Verdict(Decision.DUPLICATE, o, "same statement", rule="wording")
        return Verdict(Decision.ADD, None, "new", rule="new")


class LLMReconciler:
    """Rules first; an LLM judges the close pairs the rules cannot settle for sure.

    A slot decision (same or new value of ``plan``, ``location``...) and the same
    words are final. Otherwise, when known statements are close in meaning
    (``ask_above``) or the offline check found a contradiction, the model is shown
    the proposal and those candidates and answers ``add``, ``update``,
    ``duplicate``, ``delete`` (the new statement says a known one is no longer
    true: recorded as an UPDATE, so the old one stays in history) or ``discard``;
    its reason is kept in the decision and the observation's revision note. A
    failed call, or an answer that names no listed candidate, falls back to the
    rules."""

    def __init__(
        self,
        client: LLMClient,
        *,
        rules: RuleReconciler | None = None,
        ask_above: float = 0.55,
        max_candidates: int = 5,
    ) -> None:
        self.client = client
        self.rules = rules or RuleReconciler()
        self.ask_above = ask_above
        self.max_candidates = max_candidates
        self.name = f"litellm/{client.model}"

    def decide(
        self, proposal: ProposedObservation, candidates: Sequence[Candidate]
    ) -> tuple[Verdict, Usage]:
        ruled = self.rules.verdict(proposal, candidates)
        if ruled.rule in ("slot", "exact"):
            return ruled, Usage()
        close = [
            c
            for c in sorted(candidates, key=lambda c: -c.similarity)
            if (c.similarity >= self.ask_above or c.observation is ruled.target)
            and c.observation.trait_key in (None, proposal.trait_key)
        ][: self.max_candidates]
        if not close:
            return ruled, Usage()
        prompt, refs = reconcile_prompt([proposal], [[c.observation for c in close]])
        try:
            reply, usage = self.client.complete_json(prompt, ReconcileReply)
        except ModelError as exc:
            log.warning("reconcile with %s failed (%s); using the rules", self.client.model, exc)
            spent = getattr(exc, "usage", Usage())
            return ruled, spent + Usage(notes=("reconcile fell back to rules: the LLM failed",))
        by_id = {c.observation.id: c.observation for c in close}
        for raw in reply.decisions:
            try:
                item = ReconcileItem.model_validate(raw)
            except PydanticValidationError:
                continue
            if item.proposal != "P1":
                continue
            target = by_id.get(refs.get(item.target or "", ""))
            why = f"llm {item.decision}: {item.reason or 'no reason given'}"
            if item.decision in ("update", "duplicate", "delete"):
                if target is None:
                    break  # out of bounds: the rules decide
                decision = Decision.DUPLICATE if item.decision == "duplicate" else Decision.UPDATE
                return Verdict(decision, target, why, rule="llm"), usage
            return Verdict(Decision(item.decision), None, why, rule="llm"), usage
        return ruled, usage + Usage(notes=("reconcile reply unusable; rules decided",))
