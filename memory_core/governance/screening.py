"""Applying a tenant's policy to what is about to be stored.

Every function takes the engine's :class:`~memory_core.context.Context` and a
tenant, so the services that write (ingest, extraction, knowledge)
call them at the point where text enters the store:

- :func:`screen_conversation` before messages are embedded and stored: drops
  messages of excluded channels and roles, redacts text, subject and metadata;
- :func:`screen_extraction` on an extractor's output before reconciliation:
  drops denied observation kinds, trait keys and denied topics, redacts the rest;
- :func:`screen_observation` on an observation recorded through the API (the same
  rules; a denied one raises :class:`PolicyDenied`);
- :func:`redact_pages` on knowledge pages before they are chunked and embedded,
  :func:`redact_texts` on any other text;
- :func:`screen_trait` on a trait set through the API.

Policies are read from the store (``memory.governance.policy.set``), else the
settings, and cached by the context for :data:`POLICY_TTL` seconds (a policy changed by
another process applies within that time; in this process, at once).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from memory_core.backends.base import Collection
from memory_core.errors import ConfigError, PolicyDenied
from memory_core.extraction.base import ExtractionOutput, ProposedObservation, ProposedSummary
from memory_core.governance.policy import DEFAULT_POLICY_KEY, Policy
from memory_core.governance.redaction import Redactor
from memory_core.governance.topics import TopicMatcher
from memory_core.models import ConversationIn, PolicyRecord

if TYPE_CHECKING:
    from memory_core.context import Context
    from memory_core.knowledge.types import Page

__all__ = [
    "POLICY_ID",
    "POLICY_TTL",
    "IngestScreen",
    "PolicyDenied",
    "TenantPolicy",
    "compile_policy",
    "load_policy",
    "redact_pages",
    "redact_texts",
    "screen_conversation",
    "screen_extraction",
    "screen_observation",
    "screen_trait",
    "tenant_policy",
]

POLICY_ID = "policy"
POLICY_TTL = 2.0
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TenantPolicy:
    """A tenant's policy with its compiled redactor and topic matcher."""

    policy: Policy
    origin: str  # "stored", "settings" or "default"
    redactor: Redactor
    topics: TopicMatcher


@dataclass
class IngestScreen:
    """What the policy did to one ingest call."""

    dropped: int = 0  # messages not stored (excluded channel or role)
    redacted: int = 0  # messages whose text was changed by redaction
    findings: Counter[str] = field(default_factory=Counter)  # per detector


def load_policy(ctx: Context, tenant: str) -> tuple[Policy, str]:
    """The tenant's policy and where it came from: stored with the tenant, else the
    settings (``policies.<tenant>``, then ``policies."*"``), else the defaults."""
    found = ctx.backend.get(tenant, Collection.POLICIES, [POLICY_ID])
    if found and isinstance(found[0], PolicyRecord):
        return Policy.model_validate(found[0].policy), "stored"
    configured = ctx.settings.policies
    raw = configured.get(tenant, configured.get(DEFAULT_POLICY_KEY))
    if raw is not None:
        try:
            return Policy.model_validate(raw), "settings"
        except ValueError as exc:  # settings validate policies; this guards hand-built ones
            raise ConfigError(f"the policy of tenant {tenant!r} is invalid: {exc}") from exc
    return Policy(), "default"


def compile_policy(policy: Policy, origin: str, previous: TenantPolicy | None) -> TenantPolicy:
    """``policy`` ready to apply (reusing ``previous``'s compiled parts if unchanged)."""
    if previous is not None and previous.policy == policy:
        return replace(previous, origin=origin)
    remember = policy.remember
    return TenantPolicy(
        policy,
        origin,
        Redactor(policy.redaction),
        TopicMatcher(remember.deny_topics, remember.topic_terms),
    )


def tenant_policy(ctx: Context, tenant: str) -> TenantPolicy:
    """The tenant's policy, compiled (cached by the context for :data:`POLICY_TTL` seconds)."""
    return ctx.policy(tenant)


def screen_conversation(
    ctx: Context, tenant: str, conversation: ConversationIn
) -> tuple[ConversationIn, IngestScreen]:
    """``conversation`` as the policy lets it be stored, and what was changed."""
    tp = tenant_policy(ctx, tenant)
    remember, redactor = tp.policy.remember, tp.redactor
    report = IngestScreen()
    channel_excluded = conversation.channel in remember.exclude_channels
    messages = []
    for message in conversation.messages:
        if channel_excluded or message.role in remember.exclude_roles:
            report.dropped += 1
            continue
        redacted = redactor.redact_report(message.text)
        update: dict[str, Any] = {}
        if redacted.findings:
            report.redacted += 1
            report.findings.update(f.kind for f in redacted.findings)
            update["text"] = redacted.text
        if message.metadata:
            update["metadata"] = redactor.redact_value(message.metadata)
        messages.append(message.model_copy(update=update) if update else message)
    subject = conversation.subject
    if subject is not None:
        subject = None if channel_excluded else redactor.redact(subject)
    metadata = redactor.redact_value(conversation.metadata) if conversation.metadata else {}
    screened = conversation.model_copy(
        update={"messages": messages, "subject": subject, "metadata": metadata}
    )
    return screened, report


def _mentions(tp: TenantPolicy, *texts: object) -> list[str]:
    if not tp.topics:
        return []
    found: list[str] = []
    for text in texts:
        if isinstance(text, str):
            found += tp.topics.topics(text)
    return list(dict.fromkeys(found))


def _observation_denied(tp: TenantPolicy, obs: ProposedObservation) -> str | None:
    """Why the policy does not remember ``obs`` (kind, trait key, topic), or None."""
    remember = tp.policy.remember
    if not remember.kind_allowed(obs.kind):
        return f"{obs.kind.value} observations are not remembered"
    if obs.trait_key is not None and not remember.trait_allowed(obs.trait_key):
        return f"trait key {obs.trait_key!r} is not remembered"
    topics = _mentions(tp, obs.text, obs.value, obs.trait_key)
    if topics:
        return f"{obs.kind.value} observation on a denied topic ({', '.join(topics)}) dropped"
    return None


def _redacted(tp: TenantPolicy, obs: ProposedObservation) -> ProposedObservation:
    redactor = tp.redactor
    value = None if obs.value is None else redactor.redact(obs.value)
    return obs.model_copy(update={"text": redactor.redact(obs.text), "value": value})


def screen_observation(
    ctx: Context, tenant: str, observation: ProposedObservation
) -> ProposedObservation:
    """An observation recorded through the API, as the policy lets it be remembered:
    redacted, or refused with :class:`PolicyDenied` (same rules as
    :func:`screen_extraction`)."""
    tp = tenant_policy(ctx, tenant)
    why = _observation_denied(tp, observation)
    if why:
        raise PolicyDenied(
            f"not remembered under the policy of tenant {tenant!r}: "
            f"{why.removesuffix(' dropped')}. "
            "Nothing was written; memory.governance.policy.get() shows the remember rules "
            "(observation kinds, trait keys, deny_topics)"
        )
    return _redacted(tp, observation)


def screen_extraction(
    ctx: Context, tenant: str, output: ExtractionOutput
) -> ExtractionOutput:
    """An extractor's proposals as the policy lets them be remembered.

    Observations of a denied kind or trait key, or mentioning a denied topic, are
    dropped; so are trait updates of denied keys or topics, and summary sentences
    mentioning a denied topic. What remains is redacted. Each drop is noted in
    ``rejected`` by kind and reason only (never the text).
    """
    tp = tenant_policy(ctx, tenant)
    remember, redactor = tp.policy.remember, tp.redactor
    rejected = list(output.rejected)
    observations = []
    for obs in output.observations:
        why = _observation_denied(tp, obs)
        if why:
            rejected.append(f"policy: {why}")
        else:
            observations.append(_redacted(tp, obs))
    traits = []
    for trait in output.traits:
        topics = _mentions(tp, trait.value, trait.key)
        if not remember.trait_allowed(trait.key):
            rejected.append(f"policy: trait key {trait.key!r} is not remembered")
        elif topics:
            rejected.append(f"policy: trait {trait.key!r} on {', '.join(topics)} dropped")
        else:
            traits.append(trait.model_copy(update={"value": redactor.redact_value(trait.value)}))
    summary = output.summary
    if summary is not None:
        kept = [s for s in _SENTENCE.split(summary.text) if not _mentions(tp, s)]
        if len(kept) < len(_SENTENCE.split(summary.text)):
            rejected.append("policy: summary sentences on denied topics dropped")
        text = redactor.redact(" ".join(kept).strip())
        summary = (
            ProposedSummary(text=text, outcome=summary.outcome, evidence=summary.evidence)
            if text
            else None
        )
    return replace(
        output, observations=observations, traits=traits, summary=summary, rejected=rejected
    )


def redact_texts(ctx: Context, tenant: str, texts: Sequence[str]) -> list[str]:
    """``texts`` redacted by the tenant's policy (e.g. knowledge chunks before indexing)."""
    redactor = tenant_policy(ctx, tenant).redactor
    if not redactor.active:
        return list(texts)
    return [redactor.redact(t) for t in texts]


def redact_pages(ctx: Context, tenant: str, pages: Sequence[Page]) -> list[Page]:
    """Knowledge pages with their title, headings and block text redacted, before
    they are chunked, hashed and embedded."""
    redactor = tenant_policy(ctx, tenant).redactor
    if not redactor.active:
        return list(pages)

    def fix(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(redactor.redact(v) for v in values)

    return [
        replace(
            page,
            title=redactor.redact(page.title),
            blocks=tuple(
                replace(
                    block,
                    text=redactor.redact(block.text),
                    heading_path=fix(block.heading_path),
                    rows=fix(block.rows),
                    header=redactor.redact(block.header),
                )
                for block in page.blocks
            ),
        )
        for page in pages
    ]


def screen_trait(ctx: Context, tenant: str, key: str, value: Any) -> Any:
    """A trait value as it may be stored: a denied key is refused
    (:class:`PolicyDenied`), strings are redacted."""
    tp = tenant_policy(ctx, tenant)
    if not tp.policy.remember.trait_allowed(key):
        raise PolicyDenied(
            f"trait key {key!r} is not remembered under the policy of tenant {tenant!r} "
            "(remember.allow_trait_keys / deny_trait_keys; "
            "memory.governance.policy.get() shows them)"
        )
    return tp.redactor.redact_value(value)
